# psenet-stream: every command a user or CI needs. `make demo` and `make test` set up
# everything themselves on a fresh machine (a local .venv; data cached in ~/.cache).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU wheel of torch (on these machines pip takes it from local disk). On a CUDA
# machine: make install TORCH_SPEC=torch   (or keep the torch already in the venv)
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= onnx,gui,train,dev,serve,ray
# the data folder psenet-stream itself uses (paths.data_dir): $PSENET_STREAM_CACHE/data, else ~/.cache/psenet-stream/data
DATA_DIR ?= $(or $(PSENET_STREAM_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/psenet-stream)/data
PYTEST_ARGS ?=

.PHONY: install system-deps demo test test-all test-gpu bench bench-serve data train eval lint clean

install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $@

# Xvfb and gst-rtsp-server for the gui and rtsp tests (installed when missing and possible;
# never fails: without them those tests report skips)
system-deps:
	.ci/system-deps

data: install
	$(PY) -m psenet_stream data --dest $(DATA_DIR)

demo: install data
	$(PY) examples/demo.py --data $(DATA_DIR) --out out/demo

test: install system-deps
	$(PY) -m pytest -m "not slow and not cuda and not tensorrt" $(PYTEST_ARGS)

test-all: install system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-gpu: install
	$(PY) -m pytest -m "cuda or tensorrt" $(PYTEST_ARGS)

bench: install data
	$(PY) -m psenet_stream bench --json out/bench.json

# how many live 640x360 25 fps streams one `serve` process holds, against separate processes
bench-serve: install
	$(PY) -m psenet_stream bench --streams 1,2,3,4,6 --json out/bench-serve.json

train: install data
	$(PY) -m psenet_stream train --objective pairs --family camera --data $(DATA_DIR)/train --out runs/default \
	    --steps 3880 --batch 32 --lr 1e-3 --val-every 200 --val-count 10 --threads 1 --ev-under=-3,-0.25 --ev-over=0.25,2.5 --p-clean 0.25

eval: install data
	$(PY) -m psenet_stream eval --data $(DATA_DIR)/test --compare

lint: install
	$(VENV)/bin/ruff check psenet_stream train tests examples

clean:
	rm -rf $(VENV) out runs .pytest_cache
