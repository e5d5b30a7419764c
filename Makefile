# spikeline: the two commands of the README's first screen are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spikeline-installed
DEMO_DIR ?= demo_output
PYTEST_ARGS ?=

.PHONY: install demo test test-slow docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel *before* kilosort so pip never pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[kilosort4,test,docs]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/spikeline demo --workdir $(DEMO_DIR)

test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# The documentation site, built strictly (a broken link or reference fails) into site/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Quick benchmarks (meant to take under 30 minutes on a quiet 2-core machine; the measured time is written into
# docs/benchmarks.md): accuracy and speed JSON, then docs/benchmarks.md is regenerated.
# Full-size runs: see the flags in docs/benchmarks.md.
BENCH_ARGS_ACCURACY ?=
BENCH_ARGS_SPEED ?=
bench: install
	@start=$$(date +%s); \
	$(BIN)/python benchmarks/accuracy.py $(BENCH_ARGS_ACCURACY) && \
	$(BIN)/python benchmarks/speed.py $(BENCH_ARGS_SPEED) && \
	$(BIN)/python benchmarks/report.py --bench-wall-s $$(( $$(date +%s) - start ))

clean:
	rm -rf $(DEMO_DIR) .pytest_cache site
