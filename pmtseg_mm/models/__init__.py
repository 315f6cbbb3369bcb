from . import backbones, data_preprocessors, dense_heads, detectors, layers, losses, necks, seg_heads  # noqa: F401
