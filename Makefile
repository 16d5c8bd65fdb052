# Each target creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-quick bench image image-gpu clean

setup: $(STAMP)

# constraints.txt pins the versions CI and development are tested with;
# torch==2.13.0 is the CPU build (any other version pulls a multi-GB CUDA build).
# torch goes in with pip, which finds that build where it lies on the machine's disk; uv
# installs the rest (the same pins, in half pip's time) and keeps that torch. uv compiles
# bytecode only when asked: where PYTHONDONTWRITEBYTECODE is set (CI), every process
# would otherwise compile each module it imports, and the suite took twice as long.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0" uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/shipyard run jobs/quickstart.yaml

# The report tests load pages in Debian's Chromium (Playwright drives it; Playwright's own
# browser downloads are not reachable from CI).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null

# Two processes, each taking whole files (module-scoped clusters stay shared): most of
# the suite waits on jobs, so two at a time fit the 2-core budget. Files go out in the
# order collected (conftest puts the longest first); xdist would otherwise reorder them
# by their number of tests, and a long file of few tests started last. The full run
# lists its slowest tests, to keep it within its budget.
PYTEST := $(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test: $(STAMP) $(CHROMIUM)
	$(PYTEST) --durations=25

# The edit-test loop: the tests that start no cluster, no job, no Ray and no browser (spec,
# store, CLI shapes, units, equivalence on the in-process scheduler, manifests, the
# Kubernetes emulator); tests mark the others `cluster` or `browser` (pyproject.toml).
test-quick: $(STAMP)
	$(PYTEST) -m "not cluster and not browser"

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt -e ".[dev,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python tests/bench/bench_job_overhead.py
	$(BIN)/python tests/bench/bench_cancel.py
	$(BIN)/python tests/bench/bench_list.py
	$(BIN)/python tests/bench/bench_search.py
	$(BIN)/python tests/bench/bench_halving.py
	$(BIN)/python tests/bench/bench_train.py
	$(BIN)/python tests/bench/bench_k8s.py
	$(BIN)/python tests/bench/bench_report.py
	$(BIN)/python tests/bench/bench_pipeline.py

# The job image for Kubernetes (cluster/Dockerfile); needs a Docker daemon, then push it
# and set `image:` in cluster/kubernetes.yaml.
IMAGE ?= shipyard:0.1.0
image:
	docker build -f cluster/Dockerfile -t $(IMAGE) .

# The same with CUDA PyTorch, for jobs that ask for GPUs (the profile's `gpu_image`).
GPU_IMAGE ?= $(IMAGE)-cu128
image-gpu:
	docker build -f cluster/Dockerfile --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t $(GPU_IMAGE) .

clean:
	rm -rf $(VENV) out
