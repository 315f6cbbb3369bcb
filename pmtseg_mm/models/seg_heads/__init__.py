from .multitask_fusion_head import MultiTaskFusionHead

__all__ = ['MultiTaskFusionHead']
