from .text_encoder import TaskTextEncoder

__all__ = ['TaskTextEncoder']
