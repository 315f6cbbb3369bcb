#!/usr/bin/env bash
# Idempotent set-up of one OpenMMLab line (docs/install.md): creates the line's venv (or uses
# PMTSEG_PYTHON's environment), installs the CPU torch pinned for these machines when no torch is
# present, builds the line's mmcv with ops once into a wheel cache outside the repository, then
# installs the line's OpenMMLab stack, openmim and this package (editable).
#   PMTSEG_STACK=2023|onedl         the line: 2023 (default; mmcv 2.1.0, mmdet 3.3, .venv) or the
#                                   maintained fork onedl (onedl-mmcv 2.3.6, mmdet 3.5, .venv-onedl)
#   PMTSEG_PYTHON=/path/to/python   use that interpreter's environment instead of the line's venv
#   PMTSEG_WHEEL_DIR=DIR            where the built mmcv wheels are cached (default ~/.cache/pmtseg-mm/wheels)
#   PMTSEG_TORCH=SPEC               torch to install when none is present (default torch==2.13.0, CPU)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
wheel_dir="${PMTSEG_WHEEL_DIR:-$HOME/.cache/pmtseg-mm/wheels}"
torch_spec="${PMTSEG_TORCH:-torch==2.13.0}"
stack="${PMTSEG_STACK:-2023}"
case "$stack" in
  2023) venv=.venv; line_req=requirements/mm2023.txt; numpy_pin='numpy<2'
        mmcv_dist=mmcv; mmcv_version=2.1.0; mmcv_wheel=mmcv-2.1.0-*.whl
        build_setuptools='setuptools<70' ;;  # mmcv 2.1.0's setup.py imports pkg_resources
  onedl) venv=.venv-onedl; line_req=requirements/onedl.txt; numpy_pin='numpy>2,<3'
         mmcv_dist=onedl-mmcv; mmcv_version=2.3.6; mmcv_wheel=onedl_mmcv-2.3.6-*.whl
         build_setuptools='setuptools>=80,<81' ;;  # onedl-mmcv's pyproject.toml asks for >=80
  *) echo "PMTSEG_STACK must be 2023 (the default line) or onedl (the maintained fork line)," \
       "not '$stack' (docs/install.md)" >&2; exit 2 ;;
esac
if [ -n "${PMTSEG_PYTHON:-}" ]; then
  py="$PMTSEG_PYTHON"
else
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  py="$root/$venv/bin/python"
fi
log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# pip, without the per-package notes about find-links folders some machines' pip.conf names
pip() {
  "$py" -m pip --disable-pip-version-check "$@" 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}

stamp="$("$py" -c 'import sys; print(sys.prefix)')/.pmtseg_mm_installed"
req_hash="$stack-$(cat setup.py requirements/*.txt | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ] && "$py" -c 'import pmtseg_mm' 2>/dev/null; then
  log "environment up to date ($py)"; exit 0
fi

pip install -q 'pip>=23' wheel ninja "$numpy_pin"
if ! "$py" -c 'import torch' 2>/dev/null; then
  log "installing $torch_spec"
  pip install -q "$torch_spec"
fi
# an mmcv of this line with its ops already installed (e.g. a CUDA build of one's own) is kept
if ! "$py" -c "import mmcv.ops, importlib.metadata as m; m.version('$mmcv_dist')" 2>/dev/null \
    && ! ls "$wheel_dir"/$mmcv_wheel >/dev/null 2>&1; then
  log "building $mmcv_dist $mmcv_version with ops from source into $wheel_dir (10-15 min on 2 cores, once)"
  mkdir -p "$wheel_dir"
  pip install -q "$build_setuptools"  # set back by requirements/runtime.txt below
  MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" \
    pip wheel -q --no-build-isolation --no-deps "$mmcv_dist==$mmcv_version" -w "$wheel_dir"
fi
log "installing $mmcv_dist (cached wheel), the $stack OpenMMLab line, test requirements, mim and pmtseg_mm"
pip install -q --find-links "$wheel_dir" -r requirements/runtime.txt -r "$line_req" \
  -r requirements/tests.txt -r requirements/optional.txt
if [ "$stack" = onedl ]; then  # panopticapi-lite declares numpy<2 (onedl_nodeps.txt says why)
  pip install -q --no-deps -r requirements/onedl_nodeps.txt
fi
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
"$py" -c 'import pmtseg_mm, mmcv.ops, mmdet, mmseg, panopticapi
print("pmtseg_mm", pmtseg_mm.__version__, "ready on the", pmtseg_mm.STACK, "line, mmcv",
      mmcv.__version__, "mmdet", mmdet.__version__, "mmseg", mmseg.__version__)'
PYTHONWARNINGS=ignore "$py" - <<'PY'
import os.path as osp
from mim.utils import get_installed_path
script = osp.join(get_installed_path('pmtseg_mm'), '.mim', 'tools', 'train.py')
assert osp.isfile(script), f'mim cannot find {script}: `mim train pmtseg_mm` would fail'
PY
echo "$req_hash" > "$stamp"
