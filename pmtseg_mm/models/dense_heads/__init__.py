from .psh_head import NeckOutputPassThrough, PSHHead

__all__ = ['NeckOutputPassThrough', 'PSHHead']
