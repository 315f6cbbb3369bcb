"""Contracts shared by datasets, models and apis (importable by all of them without cycles)."""
from .tasks import RESULT_FIELDS, TASK_RESULT_KEYS, TASKS, check_tasks, fusion_switches

__all__ = ['TASKS', 'TASK_RESULT_KEYS', 'RESULT_FIELDS', 'check_tasks', 'fusion_switches']
