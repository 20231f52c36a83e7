#!/usr/bin/env bash
# Every GPU figure in one run of at most 8 minutes: results as JSON + Markdown under benchmarks/results/.
#
#   scripts/gpu_check.sh                                   (on a GPU machine, from anywhere)
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_TINY=1 scripts/gpu_check.sh   (the same steps on a CPU at tiny sizes)
#
# Steps (scripts/gpu_check.py, each time-boxed; one failing never stops the rest):
# pytest -m gpu; benchmarks/bench_kernels.py (every backend); vsugsp bench speed 1080p
# and 720p, forward and --e2e; vsugsp bench mpv --cases 1080p:cuda; vsugsp bench quality
# --device cuda (both public clips, every preset, the network's quality in fp32 and fp16, the dis peer) and
# the network's quality in exact fp32 (TF32 off); the RIFE 4.25-shaped anchor
# (benchmarks/rife_anchor.py). Writes gpu-<model>-<date>.json/.md and a folder of the
# steps' own files.
#
# Offline: packages this python lacks (vapoursynth, vsutil, av, PyYAML, pytest,
# scikit-video) are installed from the wheels that scripts/gpu_wheels.sh downloaded
# into GPU_CHECK_WHEELS (default .gpu-wheels/; carry it to the GPU machine).
# Exit status: 0 when every step passed, 1 when one did not, 2 for bad settings.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
wheels=${GPU_CHECK_WHEELS:-.gpu-wheels}

missing=()
for pair in vapoursynth:vapoursynth vsutil:vsutil av:av yaml:pyyaml pytest:pytest; do
  mod=${pair%%:*}; pkg=${pair#*:}
  "$py" -c "import $mod" >/dev/null 2>&1 || missing+=("$pkg")
done
skvideo_ok=$("$py" -c 'import importlib.util as u; print(1 if u.find_spec("skvideo") else 0)' 2>/dev/null || echo 0)
if [ ${#missing[@]} -gt 0 ] || [ "$skvideo_ok" != 1 ]; then
  if [ -d "$wheels" ]; then
    echo "gpu_check: installing from $wheels: ${missing[*]} $([ "$skvideo_ok" = 1 ] || echo scikit-video)" >&2
    [ ${#missing[@]} -gt 0 ] && "$py" -m pip install --disable-pip-version-check -q --no-index \
      --find-links "$wheels" "${missing[@]}" >&2
    [ "$skvideo_ok" = 1 ] || "$py" -m pip install --disable-pip-version-check -q --no-index --no-deps \
      --find-links "$wheels" scikit-video >&2
  else
    echo "gpu_check: missing ${missing[*]} $([ "$skvideo_ok" = 1 ] || echo scikit-video) and no wheels in $wheels" \
         "(run scripts/gpu_wheels.sh where there is a network); the steps that need them will fail" >&2
  fi
fi
# On the lent device machine only what lands under $OUT comes back: write the results there.
if [ -z "${GPU_CHECK_OUT:-}" ] && [ -n "${OUT:-}" ]; then export GPU_CHECK_OUT=$OUT; fi
exec "$py" scripts/gpu_check.py
