"""Training reliability: a non-finite-loss stop, exact resume, CPU (gloo) distributed runs."""
from .hooks import FiniteLossHook, RandomStateHook
from .optim_wrapper import CPUBF16OptimWrapper, GroupedOptimWrapperConstructor
from .runtime import RELIABILITY_HOOKS, add_reliability_hooks, setup_cpu_distributed

__all__ = [
    'CPUBF16OptimWrapper', 'FiniteLossHook', 'GroupedOptimWrapperConstructor', 'RandomStateHook', 'RELIABILITY_HOOKS', 'add_reliability_hooks',
    'setup_cpu_distributed'
]
