from .ms_deform_attn import (FastMSDeformAttnPixelDecoder, FastMultiScaleDeformableAttention,
                             multi_scale_deformable_attn_cpu)
from .text_encoder import TaskTextEncoder

__all__ = [
    'FastMSDeformAttnPixelDecoder', 'FastMultiScaleDeformableAttention',
    'multi_scale_deformable_attn_cpu', 'TaskTextEncoder'
]
