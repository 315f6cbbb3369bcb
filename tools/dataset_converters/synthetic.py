"""Generate the embedded synthetic multimodal dataset (optical + depth | sar | nir).

Usage::

    python tools/dataset_converters/synthetic.py --out data/synthetic_depth --num-train 400 \
        --num-val 100 --size 128 --aux depth --seed 0 [--workers 2]

Prints the summary returned by :func:`pmtseg_mm.datasets.synthetic.generate_synthetic` as JSON
(stdout); the progress bar goes to stderr.
"""
import argparse
import json
from typing import Optional, Sequence

from pmtseg_mm.datasets.synthetic import AUX_MODALITIES, generate_synthetic


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output dataset root')
    parser.add_argument('--num-train', type=int, default=400, help='train images (>= 1)')
    parser.add_argument('--num-val', type=int, default=100, help='val images (>= 0)')
    parser.add_argument('--size', type=int, default=128, help='image side, a multiple of 32')
    parser.add_argument('--aux', choices=AUX_MODALITIES, default='depth',
                        help='second modality')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--workers', type=int, default=0,
                        help='parallel worker processes (0 = in process); same output')
    args = parser.parse_args(argv)
    summary = generate_synthetic(args.out, args.num_train, args.num_val, size=args.size,
                                 aux=args.aux, seed=args.seed, workers=args.workers)
    print(json.dumps(summary, indent=1))


if __name__ == '__main__':
    main()
