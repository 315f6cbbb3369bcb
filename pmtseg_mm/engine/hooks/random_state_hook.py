"""Save and restore torch's random state in checkpoints so a resumed run continues exactly."""
import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

KEY = 'pmtseg_random_state'


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Store torch's CPU (and CUDA) random state in each checkpoint and restore it on resume.

    mmengine re-seeds a resumed run and advances the dataloader past the consumed batches,
    which reproduces the data order and the (numpy) augmentations, but the model's own draws
    (Mask2Former's point sampling) would restart from the seed. With this hook, a run
    interrupted at any checkpoint and resumed with ``--resume`` gives the same weights as an
    uninterrupted one (single process, deterministic kernels). Checkpoints stay plain tensors,
    loadable with ``weights_only=True``. In distributed runs only rank 0's state is saved, so
    it is not restored there (each rank keeps its own seed-derived stream).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = {'torch': torch.get_rng_state(), 'world_size': torch.tensor(get_world_size())}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint[KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get(KEY)
        if state is None:
            return
        if get_world_size() != 1 or int(state['world_size']) != 1:
            print_log('RandomStateHook: distributed run, random state not restored',
                      logger='current')
            return
        # applied just before the next training iteration: the Runner may still re-seed after
        # loading, and the train loop advances the dataloader past the consumed batches first
        self._pending = state

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending['torch'])
        if 'cuda' in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending['cuda'])
        self._pending = None
