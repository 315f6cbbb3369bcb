#!/usr/bin/env bash
# The test command of the README: set up the environment (idempotent) and run the test suite.
#   bash tools/run_tests.sh [pytest args]      (PMTSEG_STACK=onedl: on the fork line's venv)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash tools/install.sh
venv=.venv; [ "${PMTSEG_STACK:-2023}" = onedl ] && venv=.venv-onedl  # tools/install.sh's venvs
py="${PMTSEG_PYTHON:-$root/$venv/bin/python}"
exec "$py" -m pytest tests -q -p no:cacheprovider --durations=25 "$@"
