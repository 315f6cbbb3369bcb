#!/usr/bin/env bash
# Distributed training through torch.distributed.run (torchrun) of the environment's Python.
#   bash tools/dist_train.sh CONFIG NPROC [tools/train.py args]
# NPROC processes on this node: one per GPU (NCCL), or CPU processes (gloo) on a machine without
# CUDA. The interpreter: $PMTSEG_PYTHON, else the repository's .venv, else python3 on PATH (no
# activated environment needed). Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT (same on
# every node). Each process gets OMP_NUM_THREADS=1 unless set (torchrun's default).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash tools/dist_train.sh CONFIG NPROC [tools/train.py args]" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG=$1
NPROC=$2
py="${PMTSEG_PYTHON:-}"
if [ -z "$py" ]; then
    if [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"; else py="$(command -v python3 || command -v python)"; fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
PYTHONPATH="$root:${PYTHONPATH:-}" exec "$py" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" --master_port="${PORT:-29500}" \
    "$root/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"
