import pytest
import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict

from pmtseg_mm.models.seg_heads.multitask_fusion_head import MultiTaskFusionHead


def two_query_example():
    """2 queries, 2 things + 1 stuff: softmax(mask_cls) and sigmoid(mask_pred) are exact."""
    probs = torch.tensor([[0.6, 0.1, 0.1, 0.2], [0.1, 0.1, 0.5, 0.3]])
    sig = torch.tensor([[[0.9, 0.2], [0.5, 0.1]], [[0.1, 0.7], [0.5, 0.3]]])
    return probs.log(), sig.logit()


def build(num_things_classes: int = 2, num_stuff_classes: int = 1,
          **test_cfg) -> MultiTaskFusionHead:
    return MultiTaskFusionHead(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
        test_cfg=ConfigDict(test_cfg))


def test_semantic_postprocess_hand_example():
    mask_cls, mask_pred = two_query_example()
    # class scores per pixel: c0 = .6 s0 + .1 s1, c1 = .1 s0 + .1 s1, c2 = .1 s0 + .5 s1
    # (0,0): .55/.10/.14 -> 0   (0,1): .19/.09/.37 -> 2
    # (1,0): .35/.10/.30 -> 0   (1,1): .09/.04/.16 -> 2
    sem = build().semantic_postprocess(mask_cls, mask_pred).sem_seg
    assert sem.shape == (1, 2, 2) and sem.dtype == torch.long
    assert sem.tolist() == [[[0, 2], [0, 2]]]
    # the no-object probability is ignored: a query that is mostly "no object" still votes
    mask_cls2 = torch.tensor([[0.05, 0.0, 0.0, 0.95], [0.0, 0.04, 0.0, 0.96]]).clamp_min(
        1e-12).log()
    sem2 = build().semantic_postprocess(mask_cls2, torch.zeros(2, 1, 1)).sem_seg
    assert sem2.tolist() == [[[0]]]


def test_predict_crops_rescales_and_selects_tasks():
    mask_cls, mask_pred = two_query_example()
    # padded 4x4 prediction, the image is the top-left 2x2, original size 4x4
    padded = torch.full((2, 4, 4), -20.0)
    padded[:, :2, :2] = mask_pred
    sample = DetDataSample(metainfo=dict(img_shape=(2, 2), ori_shape=(4, 4),
                                         batch_input_shape=(4, 4)))
    head = build(semantic_on=True, panoptic_on=False, object_mask_thr=0.0, iou_thr=0.0,
                 max_per_image=4)
    (res, ) = head.predict(mask_cls[None], padded[None], [sample], rescale=True)
    assert set(res) == {'sem_results'}
    sem = res['sem_results'].sem_seg
    assert sem.shape == (1, 4, 4)
    assert sem[0, :, 0].tolist() == [0, 0, 0, 0] and sem[0, :, 3].tolist() == [2, 2, 2, 2]

    (res, ) = head.predict(mask_cls[None], padded[None], [sample], rescale=False,
                           tasks=('panoptic', 'instance'))
    assert set(res) == {'pan_results', 'ins_results'}
    pan = res['pan_results'].sem_seg
    assert pan.shape == (1, 2, 2)
    # query 0 -> thing 0 (instance 1) on the left column, query 1 -> stuff 2 on the right
    assert pan.tolist() == [[[INSTANCE_OFFSET, 2], [INSTANCE_OFFSET, 2]]]
    ins = res['ins_results']
    assert ins.masks.shape[1:] == (2, 2)
    assert [0, pytest.approx(0.54)] in [[lb, sc] for lb, sc in zip(ins.labels.tolist(),
                                                                   ins.scores.tolist())]
    # top-2 (query, class) scores without ties: q0·c0 = .6 (a thing) and q1·c2 = .5 (stuff,
    # dropped): one instance; its mask is sigmoid(q0) > .5, the top-left pixel only (.5 is not
    # above); score .6 x the mean sigmoid inside the mask (.9) = .54; the box of that pixel
    (res, ) = build(object_mask_thr=0.0, iou_thr=0.0, max_per_image=2).predict(
        mask_cls[None], padded[None], [sample], rescale=False, tasks=('instance', ))
    ins = res['ins_results']
    assert ins.labels.tolist() == [0]
    assert ins.masks.tolist() == [[[True, False], [False, False]]]
    assert ins.scores.tolist() == pytest.approx([0.54], abs=1e-6)
    assert ins.bboxes.tolist() == [[0.0, 0.0, 1.0, 1.0]]

    with pytest.raises(ValueError, match='tasks must be distinct names from'):
        head.predict(mask_cls[None], padded[None], [sample], tasks=('depth', ))
    # default test_cfg: panoptic only, as mmdet's MaskFormerFusionHead
    (res, ) = build().predict(mask_cls[None], padded[None], [sample])
    assert set(res) == {'pan_results'}


def segment_logits(num_queries: int = 12, size: int = 16, seed: int = 0):
    """Head outputs shaped like a trained head's at 1/4 of a (4·size)² input: a random panoptic
    layout (3 stuff regions cut by random lines, 5 random thing rectangles on top) with one
    query per segment, mask logits ±8 from the segment's coverage of every 4x4 cell (so they
    cross 0 on segment borders as a trained head's do) plus noise, and a confident class; the
    other queries predict "no object" with weak random masks."""
    g = torch.Generator().manual_seed(seed)
    full = 4 * size
    ys, xs = torch.meshgrid(torch.arange(full), torch.arange(full), indexing='ij')
    cut_y, cut_x = torch.randint(full // 4, 3 * full // 4, (2, ), generator=g).tolist()
    segments = [ys < cut_y, (ys >= cut_y) & (xs < cut_x), (ys >= cut_y) & (xs >= cut_x)]
    labels = [3, 4, 5]
    for k in range(5):
        y0, x0 = torch.randint(0, full - 8, (2, ), generator=g).tolist()
        h, w = torch.randint(6, full // 3, (2, ), generator=g).tolist()
        thing = (ys >= y0) & (ys < y0 + h) & (xs >= x0) & (xs < x0 + w)
        segments = [seg & ~thing for seg in segments] + [thing]
        labels.append(k % 3)
    mask_pred = 0.5 * torch.randn(num_queries, size, size, generator=g)
    mask_cls = torch.randn(num_queries, 7, generator=g)
    for q, (seg, label) in enumerate(zip(segments, labels)):
        cover = F.avg_pool2d(seg[None].float(), 4)[0]
        mask_pred[q] += 16 * (cover - 0.5)
        mask_cls[q, label] += 6.0
    mask_cls[len(segments):, 6] += 6.0
    return mask_cls, mask_pred


def lowres_and_full(metas, rescale, **test_cfg):
    """predict with and without lowres_postprocess on the same logits."""
    cls = torch.stack([segment_logits(seed=s)[0] for s in range(len(metas))])
    masks = torch.stack([segment_logits(seed=s)[1] for s in range(len(metas))])
    samples = [DetDataSample(metainfo=m) for m in metas]
    tasks = ('semantic', 'instance', 'panoptic')
    new = build(3, 3, **test_cfg).predict(cls, masks, samples, rescale=rescale, tasks=tasks)
    old = build(3, 3, lowres_postprocess=False, **test_cfg).predict(
        cls, masks, samples, rescale=rescale, tasks=tasks)
    return new, old, cls, masks


def sorted_instances(ins):
    order = torch.argsort(ins.scores, descending=True, stable=True)
    return ins[order]


METAS = [
    dict(img_shape=(50, 61), ori_shape=(100, 122), batch_input_shape=(64, 64)),
    dict(img_shape=(64, 64), ori_shape=(64, 64), batch_input_shape=(64, 64)),
]


@pytest.mark.parametrize('rescale', [True, False])
def test_lowres_postprocess_equals_full_resolution(rescale):
    """Instance and panoptic results are exactly mmdet's (upsampling only the surviving queries
    changes nothing); semantic argmax agrees on >= 99.9 % of the pixels."""
    new, old, *_ = lowres_and_full(METAS, rescale, object_mask_thr=0.8, iou_thr=0.8,
                                   max_per_image=20)
    for meta, res_new, res_old in zip(METAS, new, old):
        shape = meta['ori_shape'] if rescale else meta['img_shape']
        pan_new, pan_old = res_new['pan_results'].sem_seg, res_old['pan_results'].sem_seg
        assert pan_new.shape == (1, *shape)
        assert torch.equal(pan_new, pan_old) and len(torch.unique(pan_old)) > 3
        # mmdet's top-k is unsorted: the same instances may come in another order
        ins_new, ins_old = (sorted_instances(res['ins_results']) for res in (res_new, res_old))
        assert len(ins_old) > 0
        for key in ('labels', 'scores', 'masks', 'bboxes'):
            assert torch.equal(ins_new.get(key), ins_old.get(key)), key
        sem_new, sem_old = res_new['sem_results'].sem_seg, res_old['sem_results'].sem_seg
        assert sem_new.shape == sem_old.shape == (1, *shape)
        agreement = (sem_new == sem_old).float().mean().item()
        assert agreement >= 0.999, agreement


def test_lowres_postprocess_edge_cases():
    meta = METAS[0]
    # no query survives the panoptic threshold: all void, at the right size
    new, old, *_ = lowres_and_full([meta], True, object_mask_thr=1.0, max_per_image=20)
    pan = new[0]['pan_results'].sem_seg
    assert pan.shape == (1, 100, 122) and (pan == 6).all()
    assert torch.equal(pan, old[0]['pan_results'].sem_seg)
    # one class everywhere: no pixel to recompute
    mask_cls, mask_pred = segment_logits()
    mask_cls[:, :6] = torch.tensor([0.0, 0, 9, 0, 0, 0])
    sem = build(3, 3).semantic_postprocess(mask_cls, mask_pred, meta, rescale=True).sem_seg
    assert sem.shape == (1, 100, 122) and (sem == 2).all()
    # instance top-k takes several classes of the same queries: each query upsampled once
    head = build(3, 3, max_per_image=30)
    mask_cls = segment_logits()[0]
    keep = head.surviving_queries(mask_cls, 'instance')
    assert keep.tolist() == sorted(set(keep.tolist())) and len(keep) <= 12
    top = F.softmax(mask_cls, -1)[:, :-1].flatten().topk(30).indices // 6
    assert set(keep.tolist()) == set(top.tolist())
    pan_keep = head.surviving_queries(mask_cls, 'panoptic')
    scores, labels = F.softmax(mask_cls, -1).max(-1)
    assert pan_keep.tolist() == torch.nonzero((labels < 6) & (scores > 0.8))[:, 0].tolist()


def test_lowres_semantic_on_random_logits():
    """i.i.d. random mask logits, the harsh case (class borders between most cells, and
    sigmoid's curvature matters inside cells too): >= 99 % agreement (99.7 % measured; the
    realistic logits above agree on >= 99.9 %)."""
    head = build(3, 3)
    g = torch.Generator().manual_seed(0)
    mask_cls, mask_pred = torch.randn(12, 7, generator=g), 4 * torch.randn(12, 16, 16, generator=g)
    for meta in METAS:
        new = head.semantic_postprocess(mask_cls, mask_pred, meta, rescale=True).sem_seg
        old = head.semantic_postprocess(mask_cls,
                                        head.resize_masks(mask_pred, meta, rescale=True)).sem_seg
        assert (new == old).float().mean() >= 0.99
