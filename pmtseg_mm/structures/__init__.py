"""Contracts shared by datasets, models and apis (importable by all of them without cycles)."""
from .modality_layout import (InvalidDataError, ModalityLayout, channel_slices,
                              check_modality_folders, check_modality_options,
                              colour_modality, resolve_fill_values,
                              transforms_match)
from .tasks import RESULT_FIELDS, TASK_RESULT_KEYS, TASKS, check_tasks, fusion_switches

__all__ = [
    'InvalidDataError', 'ModalityLayout', 'RESULT_FIELDS', 'TASKS', 'TASK_RESULT_KEYS',
    'channel_slices', 'check_modality_folders', 'check_modality_options', 'check_tasks', 'colour_modality',
    'fusion_switches', 'resolve_fill_values', 'transforms_match'
]
