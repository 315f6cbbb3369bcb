# SemCity Toulouse, optical + NIR, 128x128 patches of tiles 04/08 (train, 1404) and 03/07 (val =
# the paper's test split, 1404). Prepare it with (docs/dataset_prepare.md):
#   python tools/dataset_converters/semcity_toulouse.py --src data/raw/SemCity-Toulouse-bench \
#       --out data/semcity_toulouse --workers 4
_base_ = ['./multimodal_pipeline.py']
dataset_type = 'SemCityToulouseDataset'
data_root = 'data/semcity_toulouse/'
aux_modality = 'nir'
image_size = (128, 128)
num_things_classes = 1
num_stuff_classes = 6
num_classes = num_things_classes + num_stuff_classes
# category names, things first (= the dataset class METAINFO['classes'], checked by
# tests/test_tools/test_converters.py); PMTSeg's label prompts use them
class_names = ('building', 'impervious surface', 'pervious surface', 'high vegetation', 'car',
               'water', 'sport venues')

# channel order of the stacked image: optical (BGR, as decoded from the 8-bit PNG) then NIR
# the stored dtypes the statistics below are for: other data stop with one error that names
# the file and the remedies (LoadMultiModalImages `dtype`, `rescale`)
modalities = {'optical': dict(channels=3, dtype='uint8'),
              aux_modality: dict(channels=1, dtype='uint8')}
modality_suffixes = {'optical': '.png', aux_modality: '.png'}
modality_channels = (3, 1)
# Per-band mean/std of the train split, optical in RGB order, from
# data/semcity_toulouse/modality_stats.json written by the converter (8-bit after the per-tile
# 2-98 % stretch). The raw dataset was not available when this file was written: the values
# below are placeholders (ImageNet RGB; mid-range NIR) -- paste yours from that file.
modality_mean = [[123.675, 116.28, 103.53], [127.5]]
modality_std = [[58.395, 57.12, 57.375], [64.0]]
# large-scale jitter (paper IV-C: 0.1-2.0, then crop to the input size)
lsj_ratio_range = (0.1, 2.0)

# --- the shared data section (multimodal_pipeline.py) filled with the values above ---
pipeline_values = dict(modalities=modalities, order=list(modalities), scale=image_size,
                       crop_size=image_size, ratio_range=lsj_ratio_range)
train_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
                 for t in _base_.test_pipeline]
dataset_values = dict(type=dataset_type, data_root=data_root, modality_suffixes=modality_suffixes)
train_dataloader = dict(dataset=dict(dataset_values, pipeline=train_pipeline,
                                     modalities={m: f'{m}/train/' for m in modalities}))
val_dataloader = dict(dataset=dict(dataset_values, pipeline=test_pipeline,
                                   modalities={m: f'{m}/val/' for m in modalities}))
test_dataloader = val_dataloader
val_evaluator = [dict(e, **{k: data_root + e[k] for k in ('ann_file', 'seg_prefix') if k in e})
                 for e in _base_.val_evaluator]
test_evaluator = val_evaluator
dataset_model = dict(
    data_preprocessor=dict(
        modality_channels=modality_channels, mean=modality_mean, std=modality_std,
        batch_augments=[dict(_base_.dataset_model.data_preprocessor.batch_augments[0],
                             size=image_size)]),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes))
