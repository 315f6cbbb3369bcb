#!/usr/bin/env bash
# Idempotent set-up: creates .venv (or uses PMTSEG_PYTHON's environment), installs the CPU torch pinned
# for these machines when no torch is present, builds mmcv 2.1.0 with ops once into a wheel cache outside
# the repository, then installs the OpenMMLab stack and this package (editable).
#   PMTSEG_PYTHON=/path/to/python   use that interpreter's environment instead of .venv
#   PMTSEG_WHEEL_DIR=DIR            where the built mmcv wheel is cached (default ~/.cache/pmtseg-mm/wheels)
#   PMTSEG_TORCH=SPEC               torch to install when none is present (default torch==2.13.0, CPU)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
wheel_dir="${PMTSEG_WHEEL_DIR:-$HOME/.cache/pmtseg-mm/wheels}"
torch_spec="${PMTSEG_TORCH:-torch==2.13.0}"
if [ -n "${PMTSEG_PYTHON:-}" ]; then
  py="$PMTSEG_PYTHON"
else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  py="$root/.venv/bin/python"
fi
log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# pip, without the per-package notes about find-links folders some machines' pip.conf names
pip() {
  "$py" -m pip --disable-pip-version-check "$@" 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}

stamp="$("$py" -c 'import sys; print(sys.prefix)')/.pmtseg_mm_installed"
req_hash="$(cat setup.py requirements/*.txt | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ] && "$py" -c 'import pmtseg_mm' 2>/dev/null; then
  log "environment up to date ($py)"; exit 0
fi

pip install -q 'pip>=23' wheel ninja 'numpy<2'
if ! "$py" -c 'import torch' 2>/dev/null; then
  log "installing $torch_spec"
  pip install -q "$torch_spec"
fi
if ! "$py" -c 'import mmcv.ops' 2>/dev/null && ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "building mmcv 2.1.0 with ops from source into $wheel_dir (about 12 min on 2 cores, once)"
  mkdir -p "$wheel_dir"
  pip install -q 'setuptools<70'  # mmcv 2.1.0's setup.py needs it; raised again below
  MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" \
    pip wheel -q --no-build-isolation --no-deps mmcv==2.1.0 -w "$wheel_dir"
fi
log "installing mmcv (cached wheel), the OpenMMLab stack, test requirements, mim and pmtseg_mm"
pip install -q --find-links "$wheel_dir" -r requirements/runtime.txt -r requirements/mminstall.txt \
  -r requirements/tests.txt -r requirements/optional.txt
pip install -q --no-deps -r requirements/mim.txt  # openmim without openxlab (optional.txt says why)
# PEP 660 editable install; setup.py links tools/ and configs/ into pmtseg_mm/.mim
pip install -q --no-deps --no-build-isolation -e .
# `mim train|test pmtseg_mm` runs <site-packages>/pmtseg_mm/.mim/tools/*.py (openmim 0.3.9 joins the
# distribution's location with the package name), a folder a PEP 660 editable install does not
# create: link the package there (it is imported from there, the same files as the repository's)
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ -L "$site/pmtseg_mm" ] || [ ! -e "$site/pmtseg_mm" ]; then
  ln -sfn "$root/pmtseg_mm" "$site/pmtseg_mm"
fi
"$py" -c 'import pmtseg_mm, mmcv.ops, mmdet, mmseg; print("pmtseg_mm", pmtseg_mm.__version__, "ready")'
PYTHONWARNINGS=ignore "$py" - <<'PY'
import os.path as osp
from mim.utils import get_installed_path
script = osp.join(get_installed_path('pmtseg_mm'), '.mim', 'tools', 'train.py')
assert osp.isfile(script), f'mim cannot find {script}: `mim train pmtseg_mm` would fail'
PY
echo "$req_hash" > "$stamp"
