"""Checkpoints load with torch's weights_only=True default without unsafe globals."""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import pmtseg_mm  # noqa: F401  (registers the allow-list)


def test_message_hub_state_round_trips_under_weights_only(tmp_path):
    hub = MessageHub.get_instance('pmtseg_ckpt_test')
    for v in (1.0, 3.0, 2.0):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', np.int64(7))
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), meta=dict(seed=np.int64(3), lr=np.float64(0.1)),
                    state_dict=dict(w=torch.ones(2))), path)
    assert b'getattr' not in pickle.dumps(hub.state_dict())
    loaded = torch.load(path, weights_only=True)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.min() == 1.0 and buf.max() == 3.0 and buf.mean() == 2.0 and buf.current() == 2.0
    assert buf.statistics('mean', 2) == 2.5
    assert loaded['meta']['seed'] == 3 and loaded['message_hub']['runtime_info']['iter'] == 7
