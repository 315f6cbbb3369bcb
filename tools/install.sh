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
#   PMTSEG_TORCHVISION=1            also torchvision, which every `mmpretrain.*` backbone needs
#                                   (ConvNeXt...): requirements/torchvision.txt, torch 2.9.1 +
#                                   torchvision 0.24.1 (x86_64: a CUDA build, ~7 GB, replacing the
#                                   CPU torch; that file says why). Default 0: no torchvision.
# Every pip command after torch has the installed torch (and torchvision) as constraints, so no
# dependency can make the resolver swap them for another build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
wheel_dir="${PMTSEG_WHEEL_DIR:-$HOME/.cache/pmtseg-mm/wheels}"
torch_spec="${PMTSEG_TORCH:-torch==2.13.0}"
stack="${PMTSEG_STACK:-2023}"
with_tv="${PMTSEG_TORCHVISION:-0}"
case "$with_tv" in
  0|1) ;;
  *) echo "PMTSEG_TORCHVISION must be 0 (no torchvision, the default) or 1 (the torch +" \
       "torchvision pair of requirements/torchvision.txt), not '$with_tv' (docs/install.md)" >&2
     exit 2 ;;
esac
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
req_hash="$stack-tv$with_tv-$(cat setup.py requirements/*.txt | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ] && "$py" -c 'import pmtseg_mm' 2>/dev/null; then
  log "environment up to date ($py)"; exit 0
fi

pip install -q 'pip>=23' wheel ninja "$numpy_pin"
torch_version() { "$py" -c 'import torch; print(torch.__version__)' 2>/dev/null || true; }
torch_before="$(torch_version)"
if [ "$with_tv" = 1 ]; then
  if ! "$py" -c 'import torchvision' 2>/dev/null; then
    log "installing the torch + torchvision pair for $(uname -m) (requirements/torchvision.txt)"
    pip install -q -r requirements/torchvision.txt
    "$py" -c 'import torchvision' || { echo "torchvision does not import beside torch" \
      "$(torch_version): see requirements/torchvision.txt" >&2; exit 1; }
  fi
elif [ -z "$torch_before" ]; then
  log "installing $torch_spec"
  pip install -q "$torch_spec"
fi
torch_now="$(torch_version)"
pins="$(mktemp)"
trap 'rm -f "$pins"' EXIT
"$py" - > "$pins" <<'PY'
import importlib.metadata as m
for dist in ('torch', 'torchvision'):
    try:
        print(f'{dist}=={m.version(dist)}')
    except m.PackageNotFoundError:
        pass
PY
# mmcv's ops are compiled against one torch build: one cached wheel folder per torch version
mmcv_cache="$wheel_dir/torch-$torch_now"
# an mmcv of this line with its ops already installed (e.g. a CUDA build of one's own) is kept,
# unless torch was replaced above
keep_mmcv=0
if [ "$torch_before" = "$torch_now" ] \
    && "$py" -c "import mmcv.ops, importlib.metadata as m; m.version('$mmcv_dist')" 2>/dev/null; then
  keep_mmcv=1
fi
if [ "$keep_mmcv" = 0 ] && ! ls "$mmcv_cache"/$mmcv_wheel >/dev/null 2>&1; then
  log "building $mmcv_dist $mmcv_version with ops for torch $torch_now from source into" \
    "$mmcv_cache (10-15 min on 2 cores, once)"
  mkdir -p "$mmcv_cache"
  pip install -q -c "$pins" "$build_setuptools"  # set back by requirements/runtime.txt below
  # --no-cache-dir: pip's own wheel cache keys a built mmcv by its source, not by the torch it
  # was compiled against, and would hand back a build for another torch
  MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" \
    pip wheel -q --no-cache-dir --no-build-isolation --no-deps "$mmcv_dist==$mmcv_version" \
    -w "$mmcv_cache"
fi
if [ "$keep_mmcv" = 0 ] && [ -n "$torch_before" ] && [ "$torch_before" != "$torch_now" ]; then
  log "torch $torch_before -> $torch_now: reinstalling $mmcv_dist built for it"
  pip install -q --no-deps --force-reinstall "$mmcv_cache"/$mmcv_wheel
fi
log "installing $mmcv_dist (cached wheel), the $stack OpenMMLab line, test requirements, mim and pmtseg_mm"
pip install -q --find-links "$mmcv_cache" -c "$pins" -r requirements/runtime.txt -r "$line_req" \
  -r requirements/tests.txt -r requirements/optional.txt
if [ "$stack" = onedl ]; then  # panopticapi-lite declares numpy<2 (onedl_nodeps.txt says why)
  pip install -q --no-deps -c "$pins" -r requirements/onedl_nodeps.txt
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
