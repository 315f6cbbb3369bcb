"""The training speed-up changes no learning: grouped parameter groups + fused AdamW against
mmengine's per-parameter groups + the for-loop AdamW, on a fixed-seed PMTSeg training."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from pmtseg_mm.engine.optim_wrapper import merge_param_groups
from test_pmtseg import build, sample

SCHEDULE = Config.fromfile('configs/_base_/schedules/adamw_iter.py')


def optim_cfg(speed_up: bool) -> dict:
    cfg = copy.deepcopy(SCHEDULE.optim_wrapper.to_dict())
    if not speed_up:  # main before the change: one group per parameter, AdamW's for-loop
        cfg.pop('constructor')
        cfg['optimizer'].pop('fused')
    return cfg


def train(speed_up: bool, steps: int = 5):
    model = build()
    model.train()
    wrapper = build_optim_wrapper(model, optim_cfg(speed_up))
    torch.manual_seed(1)  # task sampling and point sampling draw from the global RNG
    g = torch.Generator().manual_seed(2)
    losses = []
    for _ in range(steps):
        inputs = torch.rand(2, 4, 64, 64, generator=g)
        parsed, _ = model.parse_losses(model.loss(inputs, [sample(), sample()]))
        wrapper.update_params(parsed)
        losses.append(parsed.item())
    return model, wrapper, losses


def test_speed_up_gives_the_same_losses():
    """Same losses over 5 steps within 1e-4 relative: the fused AdamW kernel computes the same
    update in another operation order (float32 rounding, ~1e-7 per step), and those differences
    grow through the network's updates; the matched queries and sampled tasks stay the same."""
    fast_model, fast, fast_losses = train(True)
    ref_model, ref, ref_losses = train(False)
    assert len(fast.optimizer.param_groups) <= 6 < len(ref.optimizer.param_groups)
    assert fast_losses == pytest.approx(ref_losses, rel=1e-4)
    assert fast_losses[0] == ref_losses[0]  # before any update: bit-identical
    for (name, p), q in zip(fast_model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5, msg=name)


def test_merged_groups_keep_every_parameters_options():
    model = build()
    per_param = build_optim_wrapper(model, optim_cfg(False)).optimizer.param_groups
    grouped = build_optim_wrapper(model, optim_cfg(True)).optimizer.param_groups
    # every option but the kernel choice (fused)
    options = lambda g: {k: v for k, v in g.items() if k not in ('params', 'fused')}  # noqa: E731
    want = {id(p): options(g) for g in per_param for p in g['params']}
    got = {id(p): options(g) for g in grouped for p in g['params']}
    assert got == want  # same parameters, each with the same lr, decay, ...
    # one group per distinct set of options (backbone lr x0.1, no decay for norms and
    # embeddings, ...)
    assert len({repr(sorted(options(g).items())) for g in grouped}) == len(grouped) <= 6
    assert {g['lr'] for g in grouped} == {1e-4, 1e-5}
    merged = merge_param_groups([dict(params=[1], lr=1.0), dict(params=[2], lr=2.0),
                                 dict(params=[3], lr=1.0)])
    assert merged == [dict(params=[1, 3], lr=1.0), dict(params=[2], lr=2.0)]
