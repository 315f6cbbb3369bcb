"""Export a PMTSeg or Mask2Former checkpoint to ONNX (docs/deployment.md).

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT --out model.onnx \\
        [--tasks semantic instance panoptic] [--window 512] [--dynamic-batch]

The graph takes normalised (1, ΣC, window, window) windows (B of them with --dynamic-batch)
and returns per task the class and mask logits and the semantic scores; its
``metadata_props`` say how to build the input (modalities, channel order, mean/std) and read
the outputs (classes, tasks, output names).
"""
import argparse
import json
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction

import pmtseg_mm  # noqa: F401  (registers components, checkpoint safe globals)
from pmtseg_mm.apis.inputs import find_config
from pmtseg_mm.deployment.onnx_export import build_model, export_onnx
from pmtseg_mm.structures import TASKS


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a PMTSeg / Mask2Former model to ONNX')
    parser.add_argument('config', help='config path or config name')
    parser.add_argument('checkpoint', help="checkpoint file; 'none' exports random weights")
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--tasks', nargs='+', choices=TASKS, default=None,
                        help='task prompts to export (default: the config\'s test_cfg.tasks)')
    parser.add_argument('--window', type=int, default=512, help='window side in pixels')
    parser.add_argument('--dynamic-batch', action='store_true',
                        help='a dynamic batch axis on the input and every output')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, as in tools/test.py')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    path = find_config(args.config)
    cfg = Config.fromfile(path)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'CHECKPOINT {checkpoint!r} not found (or give none)')
    model = build_model(cfg, checkpoint)
    meta = export_onnx(cfg, model, args.out, tasks=args.tasks, window=args.window,
                       dynamic_batch=args.dynamic_batch,
                       config_name=osp.splitext(osp.basename(path))[0])
    batch = 'batch' if args.dynamic_batch else 1
    print(f'{args.out}: inputs {meta["input_name"]} ({batch}, '
          f'{model.data_preprocessor.num_channels}, '
          f'{args.window}, {args.window}), outputs {", ".join(json.loads(meta["outputs"]))}')
    return meta


if __name__ == '__main__':
    main()
