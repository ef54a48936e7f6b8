# Set-up is part of every target: on a fresh machine `make demo` and `make test` need nothing done by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RESULTS ?= results
PYTEST_ARGS ?=
BENCH_ARGS ?= --quick

.PHONY: demo test bench install fashion-mnist clean

demo: install fashion-mnist ## run the demo grid end to end and print its results
	$(VENV)/bin/reprogbench run demo --results $(RESULTS)

test: install fashion-mnist ## install with test extras and run the whole test suite
	$(PY) -m pytest --durations=15 $(PYTEST_ARGS)

bench: install fashion-mnist ## fast paths vs naive paths, appended to BENCHMARKS.md (BENCH_ARGS= for the full run)
	$(VENV)/bin/reprogbench bench $(BENCH_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# plain `torch` from PyPI: the CUDA build, which torchvision needs; it runs on the CPU too
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

# Real Fashion-MNIST from Debian's package, when it is missing and apt can be used; otherwise the demo
# says so and pretrains its original model on scikit-learn's digits instead.
fashion-mnist:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then APT=""; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then APT="sudo"; \
	else echo "note: dataset-fashion-mnist is not installed and apt is not usable here"; exit 0; fi; \
	$$APT apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$APT apt-get install -y -qq dataset-fashion-mnist \
	  || echo "note: could not install dataset-fashion-mnist; the demo falls back to digits"

clean:
	rm -rf $(VENV) $(RESULTS) .pytest_cache
