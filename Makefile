# mdemorl — the two commands: `make demo` (train in simulation) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Every recipe runs with the workspace sourced (venv underlay + colcon overlay).
WS := set +u; source install/setup.bash; set -u;
export ROS_LOG_DIR ?= $(CURDIR)/log/ros
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export MPLBACKEND ?= Agg

.PHONY: help setup build test lint typecheck pytest demo bench bench-full study clean

help:
	@echo "make setup   - bootstrap .venv (ROS 2 wheels, torch, sims) and colcon build (idempotent)"
	@echo "make demo    - train M-DeMoRL on the simulated 2R leg and print a summary"
	@echo "make test    - ruff, mypy (mdemorl_core) and pytest over all packages"
	@echo "make bench   - speed benchmarks + reduced sample-efficiency study -> BENCHMARKS.md (~30 min)"
	@echo "make bench-full - full sample-efficiency and elite-fraction study (< 2 h here)"
	@echo "make study STUDY_ARGS='--tasks Leg2R-v0 --max-minutes 100' - the resumable issue-10 study"

setup:
	@bash tools/bootstrap.sh

build: setup

lint: setup
	@$(WS) ruff check src bench tools && ruff format --check src bench tools

typecheck: setup
	@$(WS) cd src/mdemorl_core && mypy -p mdemorl_core --config-file ../../pyproject.toml

pytest: setup
	@$(WS) python -m pytest -q -ra $(PYTEST_ARGS)

test: lint typecheck pytest

demo: setup
	@$(WS) bash tools/demo.sh

bench: setup
	@$(WS) python bench/run_all.py --threads 1

bench-full: setup
	@$(WS) python bench/run_all.py --full --threads 1

# Runs what is missing of the selection, then aggregates bench/results/study.json.
study: setup
	@$(WS) python bench/study.py $(STUDY_ARGS)

clean:
	rm -rf build install log
