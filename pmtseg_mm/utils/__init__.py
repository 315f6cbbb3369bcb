from .checkpoint import checkpoint_safe_globals, register_checkpoint_safe_globals
from .config import drop_pretrained

register_checkpoint_safe_globals()

__all__ = ['checkpoint_safe_globals', 'drop_pretrained', 'register_checkpoint_safe_globals']
