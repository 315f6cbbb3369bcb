from .pmtseg import PMTSeg

__all__ = ['PMTSeg']
