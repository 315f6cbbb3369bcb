from .dual_backbone import DualBackbone, adapt_input_channels

__all__ = ['DualBackbone', 'adapt_input_channels']
