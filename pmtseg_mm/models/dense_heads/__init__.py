from .psh_head import NeckOutputPassThrough, PSHHead
from .separate_task_heads import SeparateTaskHeads

__all__ = ['NeckOutputPassThrough', 'PSHHead', 'SeparateTaskHeads']
