"""Semantic map of one window from an exported ONNX model with onnxruntime and numpy only
(no torch, mmcv, mmdet, mmengine or mmseg): the runtime recipe of docs/deployment.md.

    python tools/deployment/onnx_semantic_map.py model.onnx optical=a.npy depth=b.npy \\
        --out semantic.npy

Each modality is an (H, W) or (H, W, C) ``.npy`` array with the window's size, its channels as
the package loads them (an optical image in cv2's BGR order); the metadata of the ONNX file
gives the modalities, the channel order and the normalisation.
"""
import argparse
import json
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import onnxruntime as ort


def load(path: str, threads: int = 0) -> Tuple[ort.InferenceSession, Dict[str, object]]:
    """The onnxruntime session of ``path`` and its metadata, JSON values decoded."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    meta: Dict[str, object] = {}
    for key, value in session.get_modelmeta().custom_metadata_map.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    if not str(meta.get('format', '')).startswith('pmtseg-mm-onnx/'):
        raise ValueError(f'{path} has no pmtseg-mm metadata (export it with '
                         'tools/deployment/pytorch2onnx.py)')
    return session, meta


def normalise(arrays: Mapping[str, np.ndarray], meta: Mapping[str, object]) -> np.ndarray:
    """The graph input (1, ΣC, H, W) float32: the modalities stacked in the metadata's order,
    channels taken in ``channel_order``, then (x - mean) / std."""
    layers: List[np.ndarray] = []
    window = tuple(meta['window'])
    for modality in meta['modalities']:
        name, channels = modality['name'], modality['channels']
        if name not in arrays:
            raise KeyError(f'modality {name!r} is missing; the model takes '
                           f'{[m["name"] for m in meta["modalities"]]}')
        array = np.asarray(arrays[name], dtype=np.float32)
        array = array[..., None] if array.ndim == 2 else array
        if array.shape != window + (channels, ):
            raise ValueError(f'modality {name!r} must be {window[0]}x{window[1]} with {channels} '
                             f'channel(s) (the exported window), got {array.shape}')
        layers.append(array)
    stack = np.concatenate(layers, axis=-1)[..., meta['channel_order']]
    mean = np.asarray(meta['mean'], np.float32)
    std = np.asarray(meta['std'], np.float32)
    return ((stack - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)


def semantic_map(session: ort.InferenceSession, meta: Mapping[str, object],
                 arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """(H, W) class indices into ``meta['classes']``: the argmax of the graph's ``sem_scores``."""
    scores = session.run(['sem_scores'], {meta['input_name']: normalise(arrays, meta)})[0]
    return scores[0].argmax(axis=0)


def main(argv: Optional[List[str]] = None) -> np.ndarray:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('onnx', help='exported model (tools/deployment/pytorch2onnx.py)')
    parser.add_argument('inputs', nargs='+', help='MODALITY=array.npy per modality')
    parser.add_argument('--out', required=True, help='semantic map .npy (class indices)')
    args = parser.parse_args(argv)
    arrays = {}
    for item in args.inputs:
        name, sep, path = item.partition('=')
        if not sep or not name or not path:
            raise ValueError(f'input {item!r} must be MODALITY=PATH.npy, e.g. optical=a.npy')
        arrays[name] = np.load(path)
    session, meta = load(args.onnx)
    sem = semantic_map(session, meta, arrays)
    np.save(args.out, sem.astype(np.int64))
    classes = meta['classes']
    counts = np.bincount(sem.ravel(), minlength=len(classes))
    print(', '.join(f'{c}: {n}' for c, n in zip(classes, counts)))
    return sem


if __name__ == '__main__':
    main()
