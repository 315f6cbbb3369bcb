"""RandomStateHook: torch's random state goes into the checkpoint and comes back just before the
next training iteration (not at load time), only in single-process runs."""
import io
import logging

import torch
from mmengine.logging import MMLogger

from pmtseg_mm.engine.hooks import RandomStateHook
from pmtseg_mm.engine.hooks.random_state_hook import KEY


def test_state_saved_then_restored_before_the_next_iteration():
    hook = RandomStateHook()
    torch.manual_seed(123)
    torch.rand(5)  # somewhere in the stream
    checkpoint, current = {}, torch.get_rng_state()
    hook.before_save_checkpoint(None, checkpoint)
    assert torch.equal(checkpoint[KEY]['torch'], current)
    expected = torch.rand(4)  # what the uninterrupted run draws next
    assert int(checkpoint[KEY]['world_size']) == 1
    # the checkpoint stays plain tensors: loadable with weights_only=True
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    torch.manual_seed(0)  # a resumed run is re-seeded by the Runner after loading ...
    hook.after_load_checkpoint(None, loaded)
    reseeded = torch.get_rng_state()
    torch.manual_seed(0)
    assert torch.equal(torch.get_rng_state(), reseeded)  # ... loading itself changes nothing
    hook.before_train_iter(None, 0)
    assert torch.equal(torch.rand(4), expected)
    # applied once: later iterations continue the stream
    after = torch.get_rng_state()
    hook.before_train_iter(None, 1)
    assert torch.equal(torch.get_rng_state(), after)


def test_checkpoint_without_state_and_distributed_state_are_left_alone():
    hook = RandomStateHook()
    torch.manual_seed(7)
    before = torch.get_rng_state()
    hook.after_load_checkpoint(None, {'meta': {}})  # an older checkpoint: nothing to restore
    hook.before_train_iter(None, 0)
    assert torch.equal(torch.get_rng_state(), before)
    # saved by a 2-process run: rank 0's state would not be this process's stream
    state = {'torch': torch.manual_seed(99).get_state(), 'world_size': torch.tensor(2)}
    torch.manual_seed(7)
    logger = MMLogger.get_current_instance()
    messages = []
    handler = _ListHandler(messages)
    logger.addHandler(handler)
    try:
        hook.after_load_checkpoint(None, {KEY: state})
    finally:
        logger.removeHandler(handler)
    hook.before_train_iter(None, 0)
    assert torch.equal(torch.get_rng_state(), before)
    assert messages == ['RandomStateHook: distributed run, random state not restored']


class _ListHandler(logging.Handler):
    """Collects the logged message texts."""

    def __init__(self, messages):
        super().__init__(logging.DEBUG)
        self.messages = messages

    def emit(self, record):
        self.messages.append(record.getMessage())
