"""Config helpers."""
from typing import Any


def drop_pretrained(node: Any) -> None:
    """Set every ``init_cfg=dict(type='Pretrained', ...)`` in a config tree to None, in place.

    For builds that need no downloaded weights (tests, latency benchmarks, offline machines).
    """
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, list):
        for value in node:
            drop_pretrained(value)
