# Two commands do all the set-up: `make verify` and `make test` (README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: verify verify-mutants test test-slow lint bench bench-peers bench-peers-install bench-jax bench-time-to-accuracy bench-kernels bench-verify figures stress kill-resume examples docs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,docs]'
	touch $(STAMP)

verify: $(STAMP)
	$(BIN)/bilevel verify --out report

verify-mutants: $(STAMP)
	$(BIN)/bilevel verify --mutants --out report

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

lint: $(STAMP)
	$(BIN)/ruff check .

figures: $(STAMP)
	$(BIN)/bilevel figures --out docs/figures --cache report --format png,pdf,svg

bench: $(STAMP)
	$(BIN)/python benchmarks/hypergradient.py --out benchmarks/results-cpu-float64.md
	$(BIN)/python benchmarks/hypergradient.py --dtype float32 --out benchmarks/results-cpu-float32.md
	$(BIN)/python benchmarks/hvp.py --compile --out benchmarks/results-hvp-cpu-float64.md

bench-peers-install: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	# Betty and BOAT without their pins (numpy <= 1.26.4, torchvision): benchmarks/peers.py.
	# Betty 0.1.1's metadata ("torch>=1.6.*") is refused by pip >= 24.1: its rows then say so.
	$(BIN)/python -m pip install --quiet --no-deps 'boat-torch==1.1.1'
	-$(BIN)/python -m pip install --quiet --no-deps 'betty-ml==0.1.1'

# JAX in an environment of its own (benchmarks/jax_peer.py imports only numpy and jax)
.venv-jax/bin/python:
	$(PYTHON) -m venv .venv-jax
	.venv-jax/bin/python -m pip install --quiet jax jaxlib numpy

bench-jax: .venv-jax/bin/python

bench-time-to-accuracy: bench-peers-install bench-jax
	$(BIN)/python -W ignore benchmarks/time_to_accuracy.py --out benchmarks/results-time-to-accuracy-cpu.md
	$(BIN)/python -W ignore benchmarks/outer_loop.py --out benchmarks/results-outer-loop-cpu-float64.md
	$(BIN)/python -W ignore benchmarks/outer_loop.py --dtype float32 --out benchmarks/results-outer-loop-cpu-float32.md

# the matrix-vector kernels under the logistic HVP, in both environments (torch/numpy, JAX)
bench-kernels: $(STAMP) bench-jax
	{ echo "# torch / numpy (.venv)"; $(BIN)/python benchmarks/gemv_kernels.py; echo; \
	  echo "# JAX / numpy (.venv-jax)"; .venv-jax/bin/python benchmarks/gemv_kernels.py; } \
	  > benchmarks/results-gemv-kernels-cpu.md
	$(BIN)/python benchmarks/mlp_spectrum.py > benchmarks/results-mlp-spectrum-cpu.md

bench-verify: $(STAMP)
	$(BIN)/python benchmarks/verify_time.py --out benchmarks/results-verify-time.md

bench-peers: bench-peers-install
	$(BIN)/python benchmarks/peers.py --out benchmarks/results-peers-cpu-float64.md
	$(BIN)/python benchmarks/peers.py --dtype float32 --out benchmarks/results-peers-cpu-float32.md

stress: $(STAMP)
	$(BIN)/python -m bilevel.proofs_checks.stress --seeds 20 --out stress

kill-resume: $(STAMP)
	$(BIN)/python scripts/kill_resume.py --trials 10

examples: $(STAMP)
	$(BIN)/python -m pytest -q examples/01_unbiasedness_in_pytest
	$(BIN)/python examples/02_verify_a_rate/run.py
	$(BIN)/python examples/03_paper_figure/make_figure.py
	$(BIN)/python examples/04_your_implementation/run.py
	$(BIN)/python examples/05_argmin_with_adam/run.py

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build *.egg-info report results site .docs-src stress
