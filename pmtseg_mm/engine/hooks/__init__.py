from .finite_loss_hook import FiniteLossHook
from .random_state_hook import RandomStateHook

__all__ = ['FiniteLossHook', 'RandomStateHook']
