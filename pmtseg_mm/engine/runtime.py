"""Runner set-up shared by tools/train.py and tools/test.py: CPU (gloo) distributed runs and
the reliability hooks."""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.config import Config

RELIABILITY_HOOKS = ('FiniteLossHook', 'RandomStateHook')
_TORCHRUN_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def setup_cpu_distributed(cfg: Config, launcher: str) -> bool:
    """Start the gloo process group for ``--launcher pytorch`` on a machine without CUDA.

    mmengine 0.10's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` unconditionally, so
    on CPU the group is initialised here (from torchrun's environment) before the Runner, which
    then skips its own initialisation; DDP wraps the CPU model without ``device_ids``. Returns
    whether it did anything (False with a GPU or without a launcher: mmengine handles those).
    """
    if launcher != 'pytorch' or torch.cuda.is_available():
        return False
    missing = [k for k in _TORCHRUN_ENV if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch expects the torchrun environment, but {missing} '
                           'are not set: start with tools/dist_train.sh / dist_test.sh or '
                           '`python -m torch.distributed.run ...`')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=int(dist_cfg.get('timeout', 1800)))
        dist.init_process_group(backend='gloo', init_method='env://', timeout=timeout)
    wrapper = dict(cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False)))
    wrapper['device_ids'] = None  # a CPU module: DDP refuses device ids
    cfg.model_wrapper_cfg = wrapper
    return True


def add_reliability_hooks(cfg: Config) -> None:
    """Append :class:`FiniteLossHook` and :class:`RandomStateHook` to ``custom_hooks`` unless
    the config already lists them."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {str(h.get('type')).split('.')[-1] for h in hooks if isinstance(h, dict)}
    # scoped: the hooks live in mmdet's registry, and mmseg configs build hooks in mmseg's
    hooks += [dict(type=f'mmdet.{name}') for name in RELIABILITY_HOOKS if name not in present]
    cfg.custom_hooks = hooks
