# jaxrl_suite: `make experiment` and `make test` each set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXPERIMENT_ARGS ?=
TEST_ARGS ?=

.PHONY: install experiment test test-slow bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Trains PPO on gymnax/CartPole-v1 (embedded, no downloads) into runs/default.
experiment: $(STAMP)
	$(BIN)/jaxrl train ppo --env gymnax/CartPole-v1 --total-steps 500000 --out runs/default --overwrite $(EXPERIMENT_ARGS)

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
