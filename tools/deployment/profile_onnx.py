"""Where an exported graph's time goes: onnxruntime's node profile summed per model part
(docs/deployment.md, Speed).

    python tools/deployment/profile_onnx.py model.onnx [--threads 2] [--repeats 2]

The graph runs on a random normalised window (shape from its metadata) once to warm up, then
``--repeats`` times; the node kernel times of the last run are summed per part: the exporter names
nodes by module scope (``/backbone/backbones.0/layer3/...``), so a part is the backbone or neck
module, a head module, ``decoder layers`` (the transformer decoder's layers and their
prediction heads) or ``head, unscoped`` (the head's own tensor code: mask einsums, attention
masks, ``sem_scores``). Nodes onnxruntime creates by fusion (e.g. ``SkipLayerNormalization``)
lose their scope and are given the part of the node producing their first input.
"""
import argparse
import collections
import json
import os.path as osp
import tempfile
from typing import Dict, List, Optional

import numpy as np

DECODER = ('layers.', 'post_norm', 'mask_embed', 'cls_embed')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('onnx', help='exported .onnx file (tools/deployment/pytorch2onnx.py)')
    parser.add_argument('--threads', type=int, default=2, help='onnxruntime intra-op threads')
    parser.add_argument('--repeats', type=int, default=2, help='timed runs (the last profiled)')
    args = parser.parse_args(argv)
    for option in ('threads', 'repeats'):
        if getattr(args, option) < 1:
            parser.error(f'--{option} must be >= 1')
    if not osp.isfile(args.onnx):
        parser.error(f'ONNX file {args.onnx!r} not found')
    return args


def part_of(scope: str) -> str:
    """The model part of an exporter node name (its module scope)."""
    parts = [p for p in scope.split('/') if p]
    if len(parts) <= 1:
        return 'head, unscoped'
    if parts[0] in ('backbone', 'neck') and len(parts) > 2:
        return '/'.join(parts[:2])
    if parts[0].startswith(DECODER):
        return 'decoder layers'
    return parts[0]


def node_parts(model_path: str) -> Dict[str, str]:
    """Part of every node of the optimised graph ``model_path``: by its name, or for a node
    onnxruntime created (no scope) by the producer of its first input."""
    import onnx
    graph = onnx.load(model_path, load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    parts: Dict[str, str] = {}

    def resolve(node, depth: int = 0) -> str:
        if node.name not in parts:
            if node.name.startswith('/') or depth > 50:
                parts[node.name] = part_of(node.name)
            else:
                source = next((producer[i] for i in node.input if i in producer), None)
                parts[node.name] = (resolve(source, depth + 1) if source is not None
                                    else 'head, unscoped')
        return parts[node.name]

    for node in graph.node:
        resolve(node)
    return parts


def profile(path: str, threads: int, repeats: int) -> Dict[str, float]:
    """Milliseconds per part in the last of ``repeats`` runs, with ``total`` (the run)."""
    import onnxruntime as ort
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.log_severity_level = 3  # not the warning on saving the optimised graph
        options.profile_file_prefix = osp.join(folder, 'profile')
        options.optimized_model_filepath = osp.join(folder, 'optimised.onnx')
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        meta = session.get_modelmeta().custom_metadata_map
        channels = len(json.loads(meta['channel_order']))
        x = np.random.default_rng(0).standard_normal(
            (1, channels, *json.loads(meta['window']))).astype(np.float32)
        for _ in range(repeats + 1):
            session.run(None, {meta['input_name']: x})
        with open(session.end_profiling()) as f:
            events = json.load(f)
        parts = node_parts(options.optimized_model_filepath)
    run = [e for e in events if e.get('name') == 'model_run'][-1]
    times = collections.Counter()
    for event in events:
        name = event.get('name', '')
        if (event.get('cat') == 'Node' and name.endswith('_kernel_time')
                and run['ts'] <= event['ts'] <= run['ts'] + run['dur']):
            times[parts.get(name[:-len('_kernel_time')], 'head, unscoped')] += event['dur']
    result = {k: v / 1000 for k, v in times.most_common()}
    result['total'] = run['dur'] / 1000
    return result


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    args = parse_args(argv)
    result = profile(args.onnx, args.threads, args.repeats)
    total = result['total']
    print(f'{osp.basename(args.onnx)}: {total:.1f} ms per run, {args.threads} threads')
    print('| part | ms | share |\n|---|---|---|')
    for part, ms in result.items():
        if part != 'total':
            print(f'| {part} | {ms:.1f} | {100 * ms / total:.1f} % |')
    return result


if __name__ == '__main__':
    main()
