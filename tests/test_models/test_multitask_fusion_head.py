import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict

from pmtseg_mm.models.seg_heads.multitask_fusion_head import MultiTaskFusionHead


def two_query_example():
    """2 queries, 2 things + 1 stuff: softmax(mask_cls) and sigmoid(mask_pred) are exact."""
    probs = torch.tensor([[0.6, 0.1, 0.1, 0.2], [0.1, 0.1, 0.5, 0.3]])
    sig = torch.tensor([[[0.9, 0.2], [0.5, 0.1]], [[0.1, 0.7], [0.5, 0.3]]])
    return probs.log(), sig.logit()


def build(**test_cfg) -> MultiTaskFusionHead:
    return MultiTaskFusionHead(
        num_things_classes=2, num_stuff_classes=1, test_cfg=ConfigDict(test_cfg))


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
    assert ins.masks.shape[1:] == (2, 2) and set(ins.labels.tolist()) <= {0, 1}

    with pytest.raises(ValueError, match='tasks must be among'):
        head.predict(mask_cls[None], padded[None], [sample], tasks=('depth', ))
    # default test_cfg: panoptic only, as mmdet's MaskFormerFusionHead
    (res, ) = build().predict(mask_cls[None], padded[None], [sample])
    assert set(res) == {'pan_results'}
