"""mmseg ``EncoderDecoder`` with the TMAA affinity loss on the per-modality backbone features."""
from typing import Dict

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor


@MODELS.register_module()
class MultiModalEncoderDecoder(EncoderDecoder):
    """:class:`EncoderDecoder` whose loss adds ``loss_tmaa`` (paper eq. 2-6) as an auxiliary loss.

    The backbone must be a :class:`DualBackbone` with ``fusion`` set: the decode head gets the
    fused pyramid, TMAA compares the modalities' pyramids before fusion. Inference is exactly
    :class:`EncoderDecoder`'s. Without ``tmaa_loss`` the model is a plain EncoderDecoder.

    Args:
        tmaa_loss (dict, optional): A ``TMAALoss`` config; its ``loss_weight`` is the weight of
            the auxiliary loss. Defaults to None.
        *args, **kwargs: :class:`EncoderDecoder` arguments.
    """

    def __init__(self, *args, tmaa_loss: OptConfigType = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tmaa_loss = None if tmaa_loss is None else MODELS.build(tmaa_loss)
        if self.tmaa_loss is not None and (not hasattr(self.backbone, 'forward_modalities')
                                           or getattr(self.backbone, 'fusion', None)
                                           not in ('sum', 'concat', 'gate')):
            raise ValueError(
                'MultiModalEncoderDecoder: `tmaa_loss` needs `backbone` to be a DualBackbone with '
                "two or more modalities and `fusion` set ('sum', 'concat' or 'gate'), got "
                f'{type(self.backbone).__name__} with fusion='
                f'{getattr(self.backbone, "fusion", None)!r}')

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict[str, Tensor]:
        if self.tmaa_loss is None:
            return super().loss(inputs, data_samples)
        per_modality = self.backbone.forward_modalities(inputs)
        x = self.backbone.fuse(per_modality)
        if self.with_neck:
            x = self.neck(x)
        losses = dict(self._decode_head_forward_train(x, data_samples))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(x, data_samples))
        losses['loss_tmaa'] = self.tmaa_loss(per_modality)
        return losses
