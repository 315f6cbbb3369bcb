from .sum_fusion_neck import SumFusionNeck
from .tmsf_neck import ScaleFusion, TMSFNeck

__all__ = ['ScaleFusion', 'SumFusionNeck', 'TMSFNeck']
