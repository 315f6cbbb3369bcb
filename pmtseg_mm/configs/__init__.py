"""Python-style (mmengine pure-Python) configs of pmtseg_mm: classes instead of type strings,
``read_base()`` imports instead of ``_base_`` lists, so they can be imported and inherited::

    from mmengine.config import read_base
    with read_base():
        from pmtseg_mm.configs.pmtseg.pmtseg_r50_1xb4_300e_synthetic_depth_128x128 import *

Every config of ``configs/pmtseg/`` and ``configs/baselines/`` (and every file of
``configs/_base_/``) has a twin here, in the same folder, named after the classic file with
hyphens replaced by underscores (mmdet's split: hyphens in classic configs, underscores in
importable modules)::

    configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py
    pmtseg_mm/configs/pmtseg/pmtseg_r18_tiny_1xb4_1000it_synthetic_depth_128x128.py

A twin builds the same model, dataloaders, pipelines, evaluators and schedule as its classic
config (tests/test_interop/test_python_twins.py compares the two dicts); ``default_runtime.py``
stands for the ``mmdet::_base_/default_runtime.py`` the classic schedules inherit.
"""
