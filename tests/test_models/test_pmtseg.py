import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.models.detectors.pmtseg import PMTSeg
from loss_references import tmaa_reference
from small_parts import pixel_decoder

C = 32
CLASSES = ('building', 'car', 'tree', 'road', 'grass', 'water')  # 3 things + 3 stuff
R18 = dict(type='ResNet', depth=18, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
           init_cfg=None)
NECK = dict(
    type='TMSFNeck',
    in_channels=[[16, 32, 64, 128]] * 2,
    out_channels=C,
    num_heads=4,
    ffn_channels=2 * C,
    max_kv_tokens=64,
    pixel_decoder=pixel_decoder(C, 2 * C))


def model_cfg(head=None, **kwargs) -> ConfigDict:
    layer = dict(embed_dims=C, num_heads=4, dropout=0.0, batch_first=True)
    panoptic_head = dict(
        type='PSHHead',
        in_channels=[16, 32, 64, 128],
        feat_channels=C,
        out_channels=C,
        num_things_classes=3,
        num_stuff_classes=3,
        num_queries=6,
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
                ffn_cfg=dict(embed_dims=C, feedforward_channels=2 * C, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * 6 + [0.1]),
        loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=5.0))
    panoptic_head.update(head or {})
    cfg = dict(
        type='PMTSeg',
        backbone=dict(type='DualBackbone', backbones=[R18, R18], in_channels=(3, 1)),
        neck=NECK,
        panoptic_head=panoptic_head,
        panoptic_fusion_head=dict(
            type='MultiTaskFusionHead', num_things_classes=3, num_stuff_classes=3),
        tmaa_loss=dict(type='TMAALoss', loss_weight=5.0),
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
        test_cfg=dict(
            tasks=('semantic', 'instance', 'panoptic'),
            object_mask_thr=0.0,
            iou_thr=0.0,
            max_per_image=10))
    cfg.update(kwargs)
    return ConfigDict(cfg)


def build(head=None, **kwargs) -> PMTSeg:
    torch.manual_seed(0)
    return MODELS.build(model_cfg(head, **kwargs))


def sample(img_shape=(64, 64), ori_shape=(64, 64)) -> DetDataSample:
    """Two buildings and a car on road/grass, padded to 64x64."""
    sem = torch.full((64, 64), 3, dtype=torch.long)
    sem[32:] = 4
    masks = np.zeros((3, 64, 64), dtype=np.uint8)
    for k, (y0, y1, x0, x1) in enumerate([(0, 16, 0, 16), (0, 16, 32, 48), (40, 48, 8, 24)]):
        masks[k, y0:y1, x0:x1] = 1
    labels = torch.tensor([0, 0, 1])
    for k in range(3):
        sem[torch.from_numpy(masks[k]).bool()] = labels[k]
    data_sample = DetDataSample(metainfo=dict(
        img_shape=img_shape, ori_shape=ori_shape, pad_shape=(64, 64),
        batch_input_shape=(64, 64)))
    data_sample.gt_instances = InstanceData(labels=labels, masks=BitmapMasks(masks, 64, 64))
    data_sample.gt_sem_seg = PixelData(sem_seg=sem[None])
    return data_sample


def test_loss_has_all_terms_and_backpropagates():
    model = build()
    inputs = torch.rand(2, 4, 64, 64)
    losses = model.loss(inputs, [sample(), sample()])
    expected = {'loss_tmaa', 'loss_con', 'loss_cls', 'loss_mask', 'loss_dice'} | {
        f'd{i}.loss_{k}' for i in range(2) for k in ('cls', 'mask', 'dice')}
    assert set(losses) == expected
    assert all(v.numel() == 1 and torch.isfinite(v).all() for v in losses.values())
    sum(losses.values()).backward()
    optical, aux = model.backbone.backbones
    assert optical.conv1.weight.grad.abs().sum() > 0 and aux.conv1.weight.grad.abs().sum() > 0
    assert model.panoptic_head.text_encoder.token_embedding.weight.grad.abs().sum() > 0
    # α = 0 and no TMAA: the term disappears
    assert 'loss_tmaa' not in build(tmaa_loss=None).loss(inputs, [sample(), sample()])


def test_predict_fills_all_three_tasks_in_one_call():
    model = build().eval()
    samples = [sample(), sample(img_shape=(48, 64), ori_shape=(96, 128))]
    calls = []
    model.panoptic_head.pixel_decoder.register_forward_hook(lambda m, a, o: calls.append(1))
    model.panoptic_head.query_generator.register_forward_hook(
        lambda m, args, out: calls.append(args[2].shape[0]))
    with torch.no_grad():
        results = model.predict(torch.rand(2, 4, 64, 64), samples)
    assert calls == [1, 6]  # backbone/neck/head once, 2 images x 3 prompts along the batch
    for result, (h, w) in zip(results, [(64, 64), (96, 128)]):
        sem = result.pred_sem_seg.sem_seg
        assert sem.shape == (1, h, w) and sem.dtype == torch.long
        assert 0 <= int(sem.min()) and int(sem.max()) < 6
        pan = result.pred_panoptic_seg.sem_seg
        assert pan.shape == (1, h, w)
        assert int((pan % INSTANCE_OFFSET).max()) <= 6  # class id or void (6)
        ins = result.pred_instances
        assert ins.masks.shape[1:] == (h, w) and ins.bboxes.shape == (len(ins), 4)
        assert len(ins) <= 10 and (ins.labels < 3).all()  # things only
    # tensor mode: the head outputs of every task prompt, (B, T, N, ...)
    cls_preds, mask_preds = model._forward(torch.rand(2, 4, 64, 64), samples)
    assert len(cls_preds) == 3 and cls_preds[-1].shape == (2, 3, 6, 7)
    assert mask_preds[-1].shape == (2, 3, 6, 16, 16)


def test_untask_conditioned_head_runs_once_and_bad_tasks_raise():
    model = build(head=dict(prompt_mode='none', class_names=None),
                  test_cfg=dict(tasks=('panoptic', 'semantic'), max_per_image=10)).eval()
    calls = []
    model.panoptic_head.pixel_decoder.register_forward_hook(lambda m, a, o: calls.append(1))
    with torch.no_grad():
        (result, ) = model.predict(torch.rand(1, 4, 64, 64), [sample()])
        assert model._forward(torch.rand(1, 4, 64, 64), [sample()])[0][-1].shape[1] == 1
    assert calls == [1, 1]  # one decoder pass per call
    assert 'pred_sem_seg' in result and 'pred_panoptic_seg' in result
    assert 'pred_instances' not in result
    with pytest.raises(ValueError, match='test_cfg.tasks'):
        build(test_cfg=dict(tasks=('semantic', 'depth')))
    with pytest.raises(ValueError, match='test_cfg.tasks'):
        build(test_cfg=dict(tasks=('semantic', 'semantic')))


SUM_NECK = dict(type='SumFusionNeck', in_channels=[[16, 32, 64, 128]] * 2, out_channels=C,
                pixel_decoder=NECK['pixel_decoder'])
PLAIN_HEAD = dict(prompt_mode='none', class_names=None)
HEAD_KEYS = {'loss_cls', 'loss_mask', 'loss_dice'} | {
    f'd{i}.loss_{k}' for i in range(2) for k in ('cls', 'mask', 'dice')}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_separate_task_heads():
    """Table V: one plain head per task on the shared trunk, 3x the head parameters."""
    model = build(head=dict(type='SeparateTaskHeads', prompt_mode='none', task_probs=None))
    plain = build(head=PLAIN_HEAD)
    assert count(model.panoptic_head) == 3 * count(plain.panoptic_head)
    assert count(model) - count(model.panoptic_head) == count(plain) - count(plain.panoptic_head)
    heads = model.panoptic_head.heads
    assert [h.sample_tasks(1)[0] for h in heads.values()] == ['semantic', 'instance', 'panoptic']
    losses = model.loss(torch.rand(2, 4, 64, 64), [sample(), sample()])
    assert set(losses) == {'loss_tmaa'} | {f'{t}.{k}' for t in heads for k in HEAD_KEYS}
    sum(losses.values()).backward()
    assert all(h.query_feat.weight.grad.abs().sum() > 0 for h in heads.values())
    model.eval()
    calls = []
    for task, head in heads.items():
        head.pixel_decoder.register_forward_hook(lambda m, a, o, task=task: calls.append(task))
    with torch.no_grad():
        (result, ) = model.predict(torch.rand(1, 4, 64, 64), [sample()])
    assert calls == ['semantic', 'instance', 'panoptic']
    assert {'pred_sem_seg', 'pred_instances', 'pred_panoptic_seg'} <= set(result.keys())
    with pytest.raises(ValueError, match="prompt_mode='none'"):
        build(head=dict(type='SeparateTaskHeads', task_probs=None))
    with pytest.raises(ValueError, match='task_probs=None'):
        build(head=dict(type='SeparateTaskHeads', prompt_mode='none',
                        task_probs=dict(semantic=1.0)))
    with pytest.raises(ValueError, match='`tasks` must be distinct'):
        build(head=dict(type='SeparateTaskHeads', prompt_mode='none', tasks=('depth', )))


def test_single_modality_pmtseg():
    """Table VIII: one backbone, TMSF passes it through, L_TMAA is 0."""
    model = build(backbone=dict(type='DualBackbone', backbones=[R18], in_channels=(3, )),
                  neck=dict(NECK, in_channels=[[16, 32, 64, 128]], num_modalities=1))
    head = model.panoptic_head
    decoded = []
    decode = head._decode
    head._decode = lambda *args, **kwargs: decoded.append(decode(*args, **kwargs)) or decoded[-1]
    losses = model.loss(torch.rand(2, 3, 64, 64), [sample(), sample()])
    assert losses['loss_tmaa'].item() == 0.0
    assert all(torch.isfinite(v) for v in losses.values())
    # the last decoder layer's classification loss: weight 2 times the class-weighted mean of
    # the 2 x 6 slots' cross-entropies against the classes the Hungarian matching gave them
    # (the no-object class 6 weighs 0.1, the others 1), by hand in float64
    logits = decoded[0][0][-1].detach().double().flatten(0, 1)  # (12, 7)
    labels = head._slot_labels.flatten()
    weights = torch.tensor([1.0] * 6 + [0.1], dtype=torch.float64)[labels]
    cross_entropy = logits.logsumexp(-1) - logits.gather(1, labels[:, None])[:, 0]
    expected = 2.0 * (weights * cross_entropy).sum() / weights.sum()
    assert losses['loss_cls'].item() == pytest.approx(expected.item(), rel=1e-5)
    model.eval()
    with torch.no_grad():
        (result, ) = model.predict(torch.rand(1, 3, 64, 64), [sample()])
    assert result.pred_sem_seg.sem_seg.shape == (1, 64, 64)
    assert result.pred_panoptic_seg.sem_seg.shape == (1, 64, 64)


def test_sum_fusion_neck_in_pmtseg_keeps_tmaa_and_both_backbones():
    """Table IV "+TMAA" without TMSF: two backbones, summed levels, L_TMAA on their features."""
    model = build(neck=SUM_NECK, head=PLAIN_HEAD)
    assert count(model.neck) < count(build(head=PLAIN_HEAD).neck)
    feats = []
    model.backbone.register_forward_hook(lambda m, inp, out: feats.append(out) and None)
    losses = model.loss(torch.rand(2, 4, 64, 64), [sample(), sample()])
    assert set(losses) == {'loss_tmaa'} | HEAD_KEYS
    # TMAALoss defaults: 4 levels (16², 8², 4², 2² at a 64² input: <= 1024 points, no pooling),
    # tau 0.1, α = 5, one (optical, depth) pair
    optical, depth = feats[0]
    assert losses['loss_tmaa'].item() == pytest.approx(tmaa_reference(optical, depth), rel=1e-5)
    sum(losses.values()).backward()
    optical, aux = model.backbone.backbones
    assert optical.conv1.weight.grad.abs().sum() > 0 and aux.conv1.weight.grad.abs().sum() > 0


def test_plain_head_gives_all_three_outputs_from_one_pass():
    """Table IV rows w/o PSH: one panoptic-trained pass, post-processed into every task."""
    model = build(neck=SUM_NECK, head=PLAIN_HEAD).eval()
    calls = []
    model.panoptic_head.pixel_decoder.register_forward_hook(lambda m, a, o: calls.append(1))
    with torch.no_grad():
        (result, ) = model.predict(torch.rand(1, 4, 64, 64), [sample()])
    assert calls == [1]  # one pass
    assert {'pred_sem_seg', 'pred_instances', 'pred_panoptic_seg'} <= set(result.keys())
    assert (result.pred_instances.labels < 3).all()


def sorted_instances(ins):
    return ins[torch.argsort(ins.scores, descending=True, stable=True)]


def per_task_predict(model, inputs, samples):
    """The former predict: one head pass per task prompt, all N masks upsampled to the padded
    input size before post-processing."""
    fusion = model.panoptic_fusion_head
    fusion.test_cfg['lowres_postprocess'] = False
    x = model.extract_feat(inputs)
    results = [dict() for _ in samples]
    for task in model.test_tasks:
        cls, masks = model.panoptic_head.predict(x, samples, task)
        for merged, res in zip(results, fusion.predict(cls, masks, samples, rescale=True,
                                                       tasks=(task, ))):
            merged.update(res)
    del fusion.test_cfg['lowres_postprocess']
    return results


def test_batched_predict_equals_per_task_passes():
    """One head call for all prompts + low-resolution post-processing gives the former
    per-task results: instances and panoptic maps identical, semantic maps agreeing on
    >= 99.9 % of the pixels (here: all)."""
    model = build(test_cfg=dict(tasks=('semantic', 'instance', 'panoptic'),
                                object_mask_thr=0.3, iou_thr=0.5, max_per_image=10)).eval()
    torch.manual_seed(1)
    inputs = torch.rand(2, 4, 64, 64)
    samples = [sample(), sample(img_shape=(50, 61), ori_shape=(100, 122))]
    with torch.no_grad():
        old = per_task_predict(model, inputs, samples)
        new = model.predict(inputs, [s.clone() for s in samples])
    for res_old, res_new in zip(old, new):
        assert torch.equal(res_new.pred_panoptic_seg.sem_seg, res_old['pan_results'].sem_seg)
        ins_new, ins_old = (sorted_instances(i) for i in (res_new.pred_instances,
                                                          res_old['ins_results']))
        assert len(ins_old) > 0
        for key in ('labels', 'masks', 'bboxes'):
            assert torch.equal(ins_new.get(key), ins_old.get(key)), key
        torch.testing.assert_close(ins_new.scores, ins_old.scores, atol=1e-5, rtol=0)
        sem_new, sem_old = res_new.pred_sem_seg.sem_seg, res_old['sem_results'].sem_seg
        assert (sem_new == sem_old).float().mean() >= 0.999
