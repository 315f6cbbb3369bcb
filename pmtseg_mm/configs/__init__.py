"""Python-style (mmengine pure-Python) configs of pmtseg_mm: classes instead of type strings,
``read_base()`` imports instead of ``_base_`` lists, so they can be imported and inherited::

    from mmengine.config import read_base
    with read_base():
        from pmtseg_mm.configs.pmtseg.pmtseg_r50_1xb4_300e_synthetic_depth_128x128 import *

Each builds the same model as its classic twin under ``configs/`` (tests/test_interop).
"""
