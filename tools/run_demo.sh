#!/usr/bin/env bash
# The main job of the README, on the embedded synthetic optical + depth dataset:
# install (idempotent) -> generate data -> short training -> test printing all metrics -> pictures.
#   CONFIG=...  ITERS=300  WORK_DIR=work_dirs/demo  bash tools/run_demo.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/install.sh
py="${PMTSEG_PYTHON:-$root/.venv/bin/python}"
config="${CONFIG:-configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py}"
iters="${ITERS:-300}"
work="${WORK_DIR:-work_dirs/demo}"
data=data/synthetic_depth
if [ ! -f "$data/annotations/panoptic_val.json" ]; then
  "$py" tools/dataset_converters/synthetic.py --out "$data" --num-train 400 --num-val 100 \
    --size 128 --aux depth --seed 0 --workers 2
fi
"$py" tools/train.py "$config" --work-dir "$work" \
  --cfg-options train_cfg.max_iters="$iters" train_cfg.val_interval="$iters" \
  default_hooks.checkpoint.interval="$iters" default_hooks.logger.interval=25
"$py" tools/test.py "$config" "$work/iter_${iters}.pth" --work-dir "$work/test" \
  --show-dir "$work/pictures" --show-num 4
echo "Prediction pictures: $(ls "$work"/pictures/*.png | head -n 4 | tr '\n' ' ')"
