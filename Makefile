# jaxrl_suite: `make experiment` and `make test` each set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXPERIMENT_ARGS ?=
TEST_ARGS ?=
# A new directory per call, so earlier runs (logs, checkpoints) are never overwritten.
EXPERIMENT_OUT ?= runs/default/$(shell date +%Y%m%d-%H%M%S)
# XLA:CPU's multi-threaded Eigen pool can wedge (every thread parked, the program never
# finishes) when several JAX processes share few cores; single-threaded Eigen avoids it and
# costs little for these small networks. No effect on GPU/TPU computations.
export XLA_FLAGS := $(strip $(XLA_FLAGS) --xla_cpu_multi_thread_eigen=false)

.PHONY: install experiment test test-slow bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Trains PPO on gymnax/CartPole-v1 (embedded, no downloads) into runs/default/<date-time>.
experiment: $(STAMP)
	$(BIN)/jaxrl train ppo --env gymnax/CartPole-v1 --total-steps 500000 --out $(EXPERIMENT_OUT) $(EXPERIMENT_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15 $(TEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(TEST_ARGS)

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/env_throughput.py
	$(BIN)/python benchmarks/ppo_vs_rejax.py
	$(BIN)/python benchmarks/forgetting_attention.py

lint: $(STAMP)
	$(BIN)/ruff check jaxrl_suite tests benchmarks experiments

clean:
	rm -rf $(VENV) build *.egg-info
