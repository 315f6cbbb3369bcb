"""Predict one co-registered image set and save the picture and the prediction files.

    python demo/image_demo.py CONFIG optical=a.png depth=a.tif --weights iter_300.pth
    python demo/image_demo.py CONFIG optical=a.png --missing depth --weights ...   # no DSM

Writes ``<out-dir>/vis/<name>.png`` (modalities | semantic | instance | panoptic) and
``<out-dir>/preds/<name>_semantic.png``, ``<name>_panoptic.png`` (COCO RGB ids) and
``<name>.json`` (instances with RLE masks, panoptic segments).
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from pmtseg_mm.apis import MultiModalInferencer, parse_modality_args
from pmtseg_mm.apis.inferencer import add_backend_arguments


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file or config name (file stem under configs/)')
    parser.add_argument('inputs', nargs='+', help='MODALITY=PATH per modality, e.g. optical=a.png '
                        'depth=a.tif')
    parser.add_argument('--weights', help='checkpoint (random weights without it)')
    parser.add_argument('--missing', nargs='+', default=[],
                        help='modalities that do not exist for this input (filled as in '
                        'training with ModalityDropout)')
    parser.add_argument('--tasks', nargs='+', default=None,
                        choices=['semantic', 'instance', 'panoptic'],
                        help="tasks to predict (default: the config's test_cfg.tasks)")
    parser.add_argument('--out-dir', default='outputs', help='output folder')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='instance score threshold of the picture')
    parser.add_argument('--device', default=None, help='cpu, cuda:0 ... (default: auto)')
    add_backend_arguments(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        inputs = parse_modality_args(args.inputs)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    try:
        inferencer = MultiModalInferencer(args.config, args.weights, device=args.device,
                                          backend=args.backend, onnx=args.onnx,
                                          onnx_threads=args.threads)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    result = inferencer(inputs, tasks=args.tasks, missing=args.missing, out_dir=args.out_dir,
                        score_thr=args.score_thr)
    name = osp.splitext(osp.basename(inputs.get(inferencer.spec.names[0],
                                                next(iter(inputs.values())))))[0]
    print(f'picture: {osp.join(args.out_dir, "vis", name + ".png")}; predictions: '
          f'{osp.join(args.out_dir, "preds")}/{name}*', file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
