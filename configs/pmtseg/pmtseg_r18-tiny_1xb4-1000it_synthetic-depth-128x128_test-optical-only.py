# The tiny PMTSeg (trained WITHOUT modality dropout) tested with the depth declared missing:
# the reference for what modality dropout buys when the DSM does not exist. Test the checkpoint of
# pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py with this config: python tools/test.py THIS_CONFIG work_dir/iter_1000.pth
_base_ = './pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'

test_pipeline = [
    dict(type='LoadMultiModalImages', modalities={{_base_.modalities}},
         backend_args={{_base_.backend_args}}),
    # prob=1: the depth is always missing, filled with its normalisation mean as in inference
    dict(type='ModalityDropout', prob=1.0, modalities=['depth'], fill={{_base_.modality_mean}},
         bgr_to_rgb=True),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'modalities',
                    'modality_channels', 'modality_paths', 'missing_modalities')),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
