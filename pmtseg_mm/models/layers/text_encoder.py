"""Text encoder of the prompt-driven segmentation head (PMTSeg sec. III-D).

Task prompts ("The task is {task}.", eq. 11) and label-level texts ("RS data with a {category}")
are tokenised with mmseg's CLIP BPE tokenizer and encoded by a small Transformer trained from
scratch (no pretrained language model is needed or downloaded). As in CLIP, the sentence embedding
is the final hidden state at the end-of-text token.
"""
from typing import Dict, Sequence

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from mmseg.utils import tokenize
from torch import Tensor

#: Size of the CLIP BPE vocabulary (49152 merges + 256 bytes) incl. <start/end_of_text>.
CLIP_VOCAB_SIZE = 49408


@MODELS.register_module()
class TaskTextEncoder(BaseModule):
    """CLIP-style text Transformer for task and label prompts, trained from scratch.

    Args:
        embed_dims (int): Width of the Transformer. Defaults to 256.
        out_channels (int): Dimension of the returned sentence embedding. Defaults to 256.
        num_layers (int): Number of Transformer layers. Defaults to 2.
        num_heads (int): Attention heads per layer. Defaults to 8.
        context_length (int): Tokens per text incl. <start/end_of_text>; texts that do not fit
            raise ``ValueError``. Defaults to 16 (enough for the PSH prompts).
        causal (bool): Causal self-attention as in CLIP. If False, attention is bidirectional and
            the padding after <end_of_text> is masked out. Defaults to True.
        ffn_ratio (int): Hidden width of the FFN relative to ``embed_dims``. Defaults to 4.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 embed_dims: int = 256,
                 out_channels: int = 256,
                 num_layers: int = 2,
                 num_heads: int = 8,
                 context_length: int = 16,
                 causal: bool = True,
                 ffn_ratio: int = 4,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if context_length < 3:
            raise ValueError('TaskTextEncoder: `context_length` must be >= 3 (start, one '
                             f'token, end), got {context_length}.')
        if embed_dims % num_heads != 0:
            raise ValueError(f'TaskTextEncoder: `embed_dims` ({embed_dims}) must be divisible '
                             f'by `num_heads` ({num_heads}).')
        self.context_length = context_length
        self.causal = causal
        self.token_embedding = nn.Embedding(CLIP_VOCAB_SIZE, embed_dims)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, embed_dims))
        layer = nn.TransformerEncoderLayer(
            embed_dims,
            num_heads,
            dim_feedforward=ffn_ratio * embed_dims,
            dropout=0.0,
            activation='gelu',
            batch_first=True,
            norm_first=True)
        self.transformer = nn.TransformerEncoder(
            layer, num_layers, enable_nested_tensor=False)
        self.ln_final = nn.LayerNorm(embed_dims)
        self.text_projection = nn.Linear(embed_dims, out_channels, bias=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        self._token_cache: Dict[str, Tensor] = {}

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """CLIP BPE token ids (T, context_length) of ``texts``, cached per text.

        Raises:
            ValueError: if a text needs more than ``context_length`` tokens.
        """
        missing = [t for t in dict.fromkeys(texts) if t not in self._token_cache]
        if missing:
            # one spare position reveals texts that mmseg's tokenize would silently truncate
            tokens = tokenize(missing, context_length=self.context_length + 1)
            too_long = [t for t, row in zip(missing, tokens) if row[-1] != 0]
            if too_long:
                raise ValueError(f'TaskTextEncoder: {too_long} do not fit `context_length`='
                                 f'{self.context_length}; increase it.')
            for text, row in zip(missing, tokens[:, :-1]):
                self._token_cache[text] = row
        return torch.stack([self._token_cache[t] for t in texts])

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Encode token ids (T, L) into sentence embeddings (T, out_channels)."""
        length = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        # <end_of_text> has the largest id of the vocabulary, so argmax finds it (as in CLIP)
        eot = tokens.argmax(dim=-1)
        if self.causal:
            mask = nn.Transformer.generate_square_subsequent_mask(
                length, device=x.device, dtype=x.dtype)
            x = self.transformer(x, mask=mask, is_causal=True)
        else:
            padding = torch.arange(length, device=x.device)[None] > eot[:, None]
            x = self.transformer(x, src_key_padding_mask=padding)
        x = self.ln_final(x[torch.arange(x.shape[0], device=x.device), eot])
        return self.text_projection(x)

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Encode ``texts`` into sentence embeddings (T, out_channels)."""
        tokens = self.tokenize(texts).to(self.token_embedding.weight.device)
        return self.encode_tokens(tokens)
