import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from mmseg.utils import tokenize

from pmtseg_mm.datasets.semcity_toulouse import SemCityToulouseDataset
from pmtseg_mm.datasets.synthetic import SYNTHETIC_METAINFO
from pmtseg_mm.datasets.ubcv2 import UBCV2Dataset
from pmtseg_mm.datasets.valid import VALIDDataset
from pmtseg_mm.models.dense_heads.psh_head import PSHHead, build_task_targets
from pmtseg_mm.models.layers.text_encoder import TaskTextEncoder
from loss_references import info_nce_reference
from small_parts import pixel_decoder

CLASSES = ('building', 'car', 'tree', 'road', 'grass', 'water')  # 3 things + 3 stuff
C = 32


def head_cfg(**kwargs) -> ConfigDict:
    layer = dict(embed_dims=C, num_heads=4, dropout=0.0, batch_first=True)
    cfg = dict(
        type='PSHHead',
        in_channels=[C] * 4,
        feat_channels=C,
        out_channels=C,
        num_things_classes=3,
        num_stuff_classes=3,
        num_queries=6,
        num_transformer_feat_level=3,
        class_names=CLASSES,
        text_encoder=dict(type='TaskTextEncoder', embed_dims=C, num_layers=1, num_heads=4),
        query_generator=dict(num_layers=2, num_heads=4, pool_size=8),
        label_encoder=dict(num_layers=2, num_heads=4),
        positional_encoding=dict(num_feats=C // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=layer,
                cross_attn_cfg=layer,
                ffn_cfg=dict(
                    embed_dims=C,
                    feedforward_channels=2 * C,
                    num_fcs=2,
                    ffn_drop=0.0,
                    act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=2.0,
            reduction='mean',
            class_weight=[1.0] * 6 + [0.1]),
        loss_mask=dict(
            type='CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(
            type='DiceLoss',
            use_sigmoid=True,
            activate=True,
            reduction='mean',
            naive_dice=True,
            eps=1.0,
            loss_weight=5.0),
        train_cfg=dict(
            num_points=256,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='HungarianAssigner',
                match_costs=[
                    dict(type='ClassificationCost', weight=2.0),
                    dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='MaskPseudoSampler')),
        test_cfg=dict(panoptic_on=True, object_mask_thr=0.8, iou_thr=0.8, max_per_image=10))
    cfg.update(kwargs)
    return ConfigDict(cfg)


def build_head(**kwargs) -> PSHHead:
    torch.manual_seed(0)
    return MODELS.build(head_cfg(**kwargs))


def neck_output(batch_size: int = 2, seed: int = 1):
    """TMSFNeck-format features of a 64x64 input."""
    g = torch.Generator().manual_seed(seed)
    mask_feature = torch.randn(batch_size, C, 16, 16, generator=g)
    multi_scale = [torch.randn(batch_size, C, s, s, generator=g) for s in (2, 4, 8)]
    return mask_feature, multi_scale


def panoptic_sample(tensor_masks: bool = False) -> DetDataSample:
    """64x64: road (3) on top, grass (4) below, ignore (255) in the last 4 rows,
    two buildings (0) on the road and one car (1) on the grass."""
    sem = torch.full((64, 64), 3, dtype=torch.long)
    sem[32:] = 4
    sem[60:] = 255
    boxes = [(0, 16, 0, 16), (0, 16, 32, 48), (40, 48, 8, 24)]
    masks = np.zeros((3, 64, 64), dtype=np.uint8)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = 1
    labels = torch.tensor([0, 0, 1])
    for k in range(3):
        sem[torch.from_numpy(masks[k]).bool()] = labels[k]
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64),
            batch_input_shape=(64, 64)))
    sample.gt_instances = InstanceData(
        labels=labels,
        masks=torch.from_numpy(masks) if tensor_masks else BitmapMasks(masks, 64, 64))
    sample.gt_sem_seg = PixelData(sem_seg=sem[None])
    return sample


# ----------------------------------------------------------------------------- text encoder
def test_prompt_tokens_match_mmseg_clip_tokenizer():
    enc = TaskTextEncoder(embed_dims=C, out_channels=C, num_layers=1, num_heads=4)
    prompts = ['The task is semantic.', 'The task is instance.', 'The task is panoptic.']
    tokens = enc.tokenize(prompts)
    assert tokens.shape == (3, 16)
    # ids from mmseg's CLIP BPE tokenizer: <sot> the task is panop tic . <eot>
    assert tokens[2].tolist() == [49406, 518, 10549, 533, 1072, 24755, 269, 49407] + [0] * 8
    assert torch.equal(tokens, tokenize(prompts, context_length=16))
    # cached ids are reused, and equal a direct tokenizer call
    assert set(enc._token_cache) == set(prompts)
    assert torch.equal(enc.tokenize(prompts[2:]), tokenize(prompts[2], context_length=16))
    # the prompts differ only in the task word
    for row, task in zip(tokens.tolist(), ('semantic', 'instance', 'panoptic')):
        word = tokenize(task, context_length=8)[0].tolist()
        word = word[1:word.index(49407)]
        assert row[:4] == [49406, 518, 10549, 533]
        n = 4 + len(word)
        assert row[4:n] == word and row[n:n + 2] == [269, 49407]
        assert row[n + 2:] == [0] * (16 - n - 2)
    assert [len(tokenize(t, 8)[0].nonzero()) - 2 for t in ('semantic', 'instance')] == [2, 1]


def test_text_encoder_pools_eot_and_rejects_long_texts():
    for causal in (True, False):
        torch.manual_seed(0)
        enc = TaskTextEncoder(embed_dims=C, out_channels=8, num_layers=2, num_heads=4,
                              context_length=16, causal=causal)
        tokens = enc.tokenize(['RS data with a building', 'RS data with a low vegetation'])
        out = enc.encode_tokens(tokens)
        assert out.shape == (2, 8)
        # tokens after <end_of_text> (padding) do not change the embedding
        garbage = tokens.clone()
        garbage[:, 10:] = 1234
        assert torch.allclose(enc.encode_tokens(garbage), out, atol=1e-6)
        # a text's embedding does not depend on the other texts of the batch
        assert torch.allclose(enc.encode_tokens(tokens[1:]), out[1:], atol=1e-6)
    with pytest.raises(ValueError, match='context_length'):
        TaskTextEncoder(embed_dims=C, num_heads=4, context_length=6).tokenize(
            ['The task is panoptic.'])
    # 'RS data with a car' needs exactly 7 tokens: fits context_length=7
    assert TaskTextEncoder(embed_dims=C, num_heads=4, context_length=7).tokenize(
        ['RS data with a car'])[0, -1] == 49407


# ----------------------------------------------------------------------------- targets
@pytest.mark.parametrize('tensor_masks', [False, True])
def test_task_targets_from_panoptic_gt(tensor_masks):
    gt = panoptic_sample(tensor_masks)
    args = (gt.gt_instances.labels, gt.gt_instances.masks, gt.gt_sem_seg.sem_seg, 3, 3)
    labels, masks = build_task_targets('instance', *args)
    assert labels.tolist() == [0, 0, 1]
    assert masks.sum((1, 2)).tolist() == [256, 256, 128]
    labels, masks = build_task_targets('panoptic', *args)
    assert labels.tolist() == [0, 0, 1, 3, 4]
    assert masks.sum((1, 2)).tolist() == [256, 256, 128, 32 * 64 - 512, 28 * 64 - 128]
    labels, masks = build_task_targets('semantic', *args)
    assert labels.tolist() == [0, 1, 3, 4]
    assert masks.sum((1, 2)).tolist() == [512, 128, 32 * 64 - 512, 28 * 64 - 128]
    assert masks.dtype == torch.long and masks.shape[-2:] == (64, 64)
    # things missing from the semantic map are still merged into the semantic targets
    labels, masks = build_task_targets('semantic', args[0], args[1], None, 3, 3)
    assert labels.tolist() == [0, 1] and masks.sum((1, 2)).tolist() == [512, 128]
    with pytest.raises(ValueError, match='task must be one of'):
        build_task_targets('depth', *args)


def test_head_task_targets_follow_sampled_tasks():
    head = build_head(task_probs=dict(semantic=1.0))
    targets = head.task_targets([panoptic_sample(), panoptic_sample()],
                                ['semantic', 'instance'])
    assert [t.labels.tolist() for t in targets] == [[0, 1, 3, 4], [0, 0, 1]]
    assert head.sample_tasks(3) == ['semantic'] * 3
    torch.manual_seed(0)
    tasks = build_head().sample_tasks(20000)
    freqs = [tasks.count(t) / 20000 for t in ('semantic', 'instance', 'panoptic')]
    assert freqs == pytest.approx([0.3, 0.3, 0.4], abs=0.015)


# ----------------------------------------------------------------------------- forward
def test_outputs_depend_on_task_prompt():
    head = build_head().eval()
    x = neck_output()
    samples = [panoptic_sample(), panoptic_sample()]
    with torch.no_grad():
        cls_sem, mask_sem = head(x, samples, ['semantic', 'semantic'])
        cls_pan, mask_pan = head(x, samples, 'panoptic')
        cls_mix, _ = head(x, samples, ['semantic', 'panoptic'])
        cls_pan2, _ = head(x, samples)  # default prompt: panoptic
    assert len(cls_sem) == 3 and cls_sem[-1].shape == (2, 6, 7)
    assert mask_sem[-1].shape == (2, 6, 16, 16)
    assert (cls_sem[-1] - cls_pan[-1]).abs().max() > 1e-3
    assert (mask_sem[-1] - mask_pan[-1]).abs().max() > 1e-3
    assert torch.allclose(cls_mix[-1][0], cls_sem[-1][0], atol=1e-5)
    assert torch.allclose(cls_mix[-1][1], cls_pan[-1][1], atol=1e-5)
    assert torch.equal(cls_pan2[-1], cls_pan[-1])

    cls_logits, mask_full = head.predict(x, samples, 'instance')
    assert cls_logits.shape == (2, 6, 7) and mask_full.shape == (2, 6, 64, 64)
    with pytest.raises(ValueError, match='tasks must be'):
        head(x, samples, ['semantic'])
    with pytest.raises(ValueError, match='tasks must be'):
        head.predict(x, samples, 'depth')

    plain = build_head(prompt_mode='none').eval()
    with torch.no_grad():
        assert torch.equal(plain(x, samples, 'semantic')[0][-1],
                           plain(x, samples, 'panoptic')[0][-1])
    lv = build_head(prompt_mode='lv').eval()
    with torch.no_grad():
        assert (lv(x, samples, 'semantic')[0][-1] - lv(x, samples, 'instance')[0][-1]).abs(
        ).max() > 1e-3


def test_neck_output_format_is_checked():
    head = build_head()
    mask_feature, multi_scale = neck_output()
    samples = [panoptic_sample(), panoptic_sample()]
    with pytest.raises(ValueError, match='3 multi-scale features'):
        head((mask_feature, multi_scale[:2]), samples)
    with pytest.raises(ValueError, match='out_channels'):
        head((mask_feature[:, :8], multi_scale), samples)
    with pytest.raises(TypeError, match='neck output'):
        head(multi_scale, samples)


# ----------------------------------------------------------------------------- losses
AUX_KEYS = {f'd{i}.loss_{k}' for i in range(2) for k in ('cls', 'mask', 'dice')}
MAIN_KEYS = {'loss_cls', 'loss_mask', 'loss_dice'}


@pytest.mark.parametrize('kwargs, has_con', [
    (dict(), True),
    (dict(use_contrastive=False), False),
    (dict(prompt_mode='nt'), False),
    (dict(prompt_mode='lv', class_names=None), False),
    (dict(prompt_mode='none', class_names=None), False),
    (dict(contrastive_level='batch'), True),
])
def test_loss_keys_follow_switches(kwargs, has_con):
    head = build_head(**kwargs)
    losses = head.loss(neck_output(), [panoptic_sample(), panoptic_sample(True)])
    expected = MAIN_KEYS | AUX_KEYS | ({'loss_con'} if has_con else set())
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    mode = kwargs.get('prompt_mode', 'psh')
    assert hasattr(head, 'text_encoder') == (mode in ('psh', 'nt'))
    assert hasattr(head, 'task_embed') == (mode == 'lv')
    assert hasattr(head, 'query_feat') == (mode == 'none')
    assert hasattr(head, 'label_encoder') == has_con
    assert hasattr(head, 'task_mlp') == (mode == 'psh')  # 'nt': the text embedding is I_task
    sum(losses.values()).backward()
    if mode in ('psh', 'nt'):
        assert head.text_encoder.token_embedding.weight.grad.abs().sum() > 0
    if has_con:
        # L_CON reaches the label branch
        assert head.label_encoder.layers[0].linear1.weight.grad.abs().sum() > 0


def record_queries(head: PSHHead) -> dict:
    """Keep Q_task (from ``_decode``) and the label encoder's input and output (Q_label)."""
    kept = dict(q_task=[], label_in=[], q_label=[])
    decode = head._decode

    def recording_decode(*args, **kwargs):
        out = decode(*args, **kwargs)
        kept['q_task'].append(out[2])
        return out

    def hook(module, inputs, output):  # returns None: the output is left as it is
        kept['label_in'].append(inputs[0])
        kept['q_label'].append(output)

    head._decode = recording_decode
    head.label_encoder.register_forward_hook(hook)
    return kept


def test_contrastive_pairs_matched_queries_with_their_label_texts():
    head = build_head(task_probs=dict(instance=1.0), loss_con_weight=2.0)
    kept = record_queries(head)
    losses = head.loss(neck_output(1), [panoptic_sample()])
    (label_embeds, ) = kept['label_in']
    texts = head.text_encoder(head.label_texts)
    assert head.label_texts[0] == 'RS data with a building'
    assert head.label_texts[-1] == 'RS data without a matched segment'
    # per slot: index of the label text it carries (instance task: 2 buildings, 1 car)
    slot_text = [int((texts - row).abs().sum(-1).argmin()) for row in label_embeds[0]]
    assert sorted(slot_text) == [0, 0, 1, 6, 6, 6]
    # β = 2 times the two-way multi-positive InfoNCE (τ = 0.07) of the one image's 6 slots,
    # positives = slots carrying the same label text
    positives = [[ti == tj for tj in slot_text] for ti in slot_text]
    expected = 2.0 * info_nce_reference(kept['q_task'][0][0], kept['q_label'][0][0], positives,
                                        0.07)
    assert losses['loss_con'].item() == pytest.approx(expected, rel=1e-5)


def test_psh_without_contrast_differs_from_nt_by_the_task_mlp():
    """Table X "w/o L_CON" vs Table XI "NT": the label texts only feed L_CON, so the two
    differ by PSH's 2-layer task MLP (sec. III-D-1) - and so do their task embeddings."""
    psh, nt = build_head(use_contrastive=False), build_head(prompt_mode='nt')
    mlp = sum(p.numel() for p in psh.task_mlp.parameters())
    assert mlp == 2 * (C * C + C)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(psh) - count(nt) == mlp
    nt.load_state_dict({k: v for k, v in psh.state_dict().items() if 'task_mlp' not in k})
    with torch.no_grad():
        i_psh = psh.task_embeddings(['semantic'], torch.device('cpu'))
        i_nt = nt.task_embeddings(['semantic'], torch.device('cpu'))
        assert torch.allclose(i_nt, nt.text_encoder(['The task is semantic.']), atol=1e-6)
        assert torch.allclose(i_psh, psh.task_mlp(i_nt), atol=1e-6)
    assert (i_psh - i_nt).abs().max() > 1e-3


def test_plain_head_trains_on_panoptic_targets():
    """'none' (w/o PSH): one query set for all tasks, so training uses one task's targets."""
    head = build_head(prompt_mode='none', class_names=None)
    assert head.sample_tasks(5) == ['panoptic'] * 5
    assert build_head(prompt_mode='none', task_probs=dict(semantic=1.0)).sample_tasks(2) == \
        ['semantic'] * 2
    with pytest.raises(ValueError, match='exactly one task'):
        build_head(prompt_mode='none', task_probs=dict(semantic=0.5, panoptic=0.5))


def test_batch_level_contrast_uses_task_specific_padding_texts():
    head = build_head(contrastive_level='batch', task_probs=dict(instance=1.0))
    assert head.label_texts[6:] == [
        'RS data without a matched segment', 'RS data without a matched segment for semantic',
        'RS data without a matched segment for instance',
        'RS data without a matched segment for panoptic']
    kept = record_queries(head)
    losses = head.loss(neck_output(2), [panoptic_sample(), panoptic_sample()])
    texts = head.text_encoder(head.label_texts)
    slot_texts = []
    for image in kept['label_in'][0]:
        slot_texts.append([int((texts - row).abs().sum(-1).argmin()) for row in image])
        assert sorted(slot_texts[-1]) == [0, 0, 1, 8, 8, 8]  # unmatched: the instance padding
    # one row per image (its 6 slots flattened); positives: images whose slots carry the same
    # texts in the same order; β = 0.5 (default), τ = 0.07
    positives = [[ta == tb for tb in slot_texts] for ta in slot_texts]
    expected = 0.5 * info_nce_reference(kept['q_task'][0].flatten(1),
                                        kept['q_label'][0].flatten(1), positives, 0.07)
    assert losses['loss_con'].item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1  # the two images' slots differ in order: each has one positive
    # a batch of one image has no negatives
    assert head.loss(neck_output(1), [panoptic_sample()])['loss_con'].item() == pytest.approx(0.0)


def test_contrastive_loss_reuses_the_assignment_of_the_segmentation_loss():
    """L_CON pairs each slot with the label that L_PSH's Hungarian matching of the last decoder
    layer gave it: the matcher runs once per image and decoder layer, never again for L_CON."""
    head = build_head(task_probs=dict(panoptic=1.0))
    assigned, seen = [], []
    assign = head.assigner.assign

    def counting_assign(*args, **kwargs):
        result = assign(*args, **kwargs)
        assigned.append(result)
        return result

    head.assigner.assign = counting_assign
    head.label_encoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    head.loss(neck_output(2), [panoptic_sample(), panoptic_sample()])
    num_layers = head.num_transformer_decoder_layers + 1  # the initial queries and each layer
    assert len(assigned) == 2 * num_layers
    texts = head.text_encoder(head.label_texts)
    for image, result in zip(seen[0], assigned[-2:]):  # the last layer's assignment
        slot_text = [int((texts - row).abs().sum(-1).argmin()) for row in image]
        # gt order of panoptic targets: building, building, car, road, grass
        gt_labels = torch.tensor([0, 0, 1, 3, 4])
        expected = torch.full((6, ), 6)  # unmatched: the padding text
        matched = result.gt_inds > 0
        expected[matched] = gt_labels[result.gt_inds[matched] - 1]
        assert slot_text == expected.tolist()


@pytest.mark.parametrize('classes', [
    SYNTHETIC_METAINFO['classes'], SemCityToulouseDataset.METAINFO['classes'],
    UBCV2Dataset.METAINFO['classes'], VALIDDataset.METAINFO['classes']])
@pytest.mark.parametrize('level', ['query', 'batch'])
def test_padding_text_differs_from_every_class_text(classes, level):
    """UBCV2 has a stuff class "background": it must not share the unmatched slots' text."""
    kwargs = dict(num_things_classes=1, num_stuff_classes=len(classes) - 1,
                  class_names=tuple(classes), contrastive_level=level,
                  loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                                class_weight=[1.0] * len(classes) + [0.1]))
    head = build_head(**kwargs)
    num_classes = len(classes)
    class_texts, pad_texts = head.label_texts[:num_classes], head.label_texts[num_classes:]
    assert len(pad_texts) == (4 if level == 'batch' else 1)
    assert not set(pad_texts) & set(class_texts)
    assert len(set(head.label_texts)) == len(head.label_texts)
    with pytest.raises(ValueError, match='`pad_text` gives'):
        build_head(**kwargs, pad_text=f'RS data with a {classes[-1]}')


def test_task_queries_and_i_task_share_one_layer_norm():
    head = build_head()
    x = neck_output(2)
    with torch.no_grad():
        cls_preds, _, q_task = head._decode(x, ['semantic', 'panoptic'])
    # every query row, I_task (the last) included, is LayerNorm-ed: zero mean, unit variance
    assert torch.allclose(q_task.mean(-1), torch.zeros(2, 6), atol=1e-5)
    assert torch.allclose(q_task.var(-1, unbiased=False), torch.ones(2, 6), atol=1e-3)


def test_invalid_configs_raise():
    with pytest.raises(ValueError, match='prompt_mode'):
        build_head(prompt_mode='clip')
    with pytest.raises(ValueError, match='`contrastive_level` must be one of'):
        build_head(contrastive_level='image')
    with pytest.raises(ValueError, match='`contrastive_form` must be one of'):
        build_head(contrastive_form='sum')
    with pytest.raises(ValueError, match='use_contrastive=True'):
        build_head(prompt_mode='nt', use_contrastive=True)
    with pytest.raises(ValueError, match='class_names'):
        build_head(class_names=CLASSES[:5])
    with pytest.raises(ValueError, match='task_probs'):
        build_head(task_probs=dict(semantic=0.5, depth=0.5))
    with pytest.raises(ValueError, match='task_probs'):
        build_head(task_probs=dict(semantic=0.0))
    with pytest.raises(ValueError, match='task_prompt'):
        build_head(task_prompt='The task is')
    # label texts are tokenised at build time: a too long category name fails early
    with pytest.raises(ValueError, match='context_length'):
        build_head(class_names=CLASSES[:5] + ('water ' * 12, ))


def test_own_pixel_decoder_for_multi_level_inputs():
    """Without a TMSF neck the head can run mmdet's pixel decoder on backbone levels."""
    head = build_head(
        in_channels=[8, 16, 32, 64],
        pixel_decoder=pixel_decoder(C, 2 * C)).eval()
    feats = [torch.rand(1, c, 64 // s, 64 // s) for c, s in zip((8, 16, 32, 64), (4, 8, 16, 32))]
    with torch.no_grad():
        cls_preds, mask_preds = head(feats, [panoptic_sample()], 'semantic')
    assert cls_preds[-1].shape == (1, 6, 7) and mask_preds[-1].shape == (1, 6, 16, 16)


@pytest.mark.parametrize('prompt_mode', ['psh', 'lv', 'none'])
def test_batched_task_passes_equal_per_task_passes(prompt_mode):
    """forward_tasks decodes B images x T prompts as B·T rows sharing each image's memories;
    row (b, t) must equal the task-t pass of image b (up to float reassociation)."""
    head = build_head(prompt_mode=prompt_mode).eval()
    x = neck_output()
    samples = [panoptic_sample(), panoptic_sample()]
    tasks = ('semantic', 'instance', 'panoptic')
    with torch.no_grad():
        cls_b, mask_b = head.forward_tasks(x, samples, tasks)
        assert len(cls_b) == len(mask_b) == 3
        assert cls_b[-1].shape == (2, 3, 6, 7) and mask_b[-1].shape == (2, 3, 6, 16, 16)
        for t, task in enumerate(tasks):
            cls, mask = head(x, samples, task)
            for layer in range(3):
                torch.testing.assert_close(cls_b[layer][:, t], cls[layer], atol=1e-5, rtol=0)
                torch.testing.assert_close(mask_b[layer][:, t], mask[layer], atol=1e-5, rtol=0)
                assert torch.equal(cls_b[layer][:, t].argmax(-1), cls[layer].argmax(-1))
                assert torch.equal(mask_b[layer][:, t].argmax(1), mask[layer].argmax(1))
        # one prompt: the same rows as forward
        (cls_1, *_), _ = head.forward_tasks(x, samples, ['instance'])
        torch.testing.assert_close(cls_1[:, 0], head(x, samples, 'instance')[0][0],
                                   atol=1e-5, rtol=0)
    for bad in (['semantic', 'semantic'], ['depth'], []):
        with pytest.raises(ValueError, match='tasks must be distinct'):
            head.forward_tasks(x, samples, bad)
