#!/usr/bin/env bash
# Distributed testing through torch.distributed.run (torchrun) of the environment's Python.
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py args]
# Same interpreter choice and variables as tools/dist_train.sh (gloo on CPU-only machines).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py args]" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
py="${PMTSEG_PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"; else py="$(command -v python3 || command -v python)"; fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
PYTHONPATH="$root:${PYTHONPATH:-}" exec "$py" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    "$root/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
