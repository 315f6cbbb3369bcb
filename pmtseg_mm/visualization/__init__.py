from .multimodal_visualizer import (MultiModalVisualizationHook, colorize_labels,
                                    colorize_panoptic, draw_multimodal_prediction,
                                    render_modality)

__all__ = ['MultiModalVisualizationHook', 'colorize_labels', 'colorize_panoptic',
           'draw_multimodal_prediction', 'render_modality']
