from .tmsf_neck import ScaleFusion, TMSFNeck

__all__ = ['ScaleFusion', 'TMSFNeck']
