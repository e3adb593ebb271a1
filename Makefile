# ecs-canary: every target works on a fresh machine; `make venv` installs everything else needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The local stack's ports and state directory (pids, logs, Temporal's SQLite file).
export TEMPORAL_PORT ?= 7233
export TEMPORAL_UI_PORT ?= 8233
export ECS_EMULATOR_PORT ?= 5000
export LOCAL_DIR ?= .local

.PHONY: venv test test-fast lint up down status demo bench clean

venv: $(STAMP)

# uv (from PyPI, pinned) resolves and installs the project's pins in parallel: about 10 s on a
# fresh machine, where pip took 60-70 s of the 5-minute `make test` budget. Unlike pip, uv
# leaves the installed packages uncompiled unless asked: where PYTHONDONTWRITEBYTECODE is set,
# every process the tests start (workers, emulators, the starter) would compile moto, scipy
# and the SDK from source again, which made a fresh clone's `make test` 100 s slower.
UV_VERSION := 0.13.9
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e '.[dev]'
	touch $(STAMP)

# Every test, the slow fault-injection ones included (what CI runs), on TEST_WORKERS
# pytest-xdist workers, each with its own emulator and Temporal servers (tests/conftest.py says
# how the tests share out). Most tests wait on servers and timers, so there are more workers
# than cores. Ends with the 10 slowest tests.
TEST_WORKERS ?= 6
# The project's bytecode is compiled once before the workers start: on a fresh clone the
# xdist workers would otherwise all compile the same modules at the same time.
COMPILE := $(BIN)/python -m compileall -q -j 0 workflows activities ecs_canary ecs_emulator cli \
	bench tests worker.py starter.py
# A worker process that dies (the SDK's Rust core aborts the process on a panic) ends the run
# with that test failed, `--max-worker-restart=0`: with `--dist loadgroup`, pytest-xdist would
# otherwise wait for the dead worker's tests for good, and CI would hang until its limit.
XDIST := --dist loadgroup --max-worker-restart=0
# pytest rewrites the asserts of every test module it imports, in every xdist worker, and keeps
# the result beside the module's bytecode unless PYTHONDONTWRITEBYTECODE is set: with it kept,
# the next run's workers skip that (about 10 s of CPU in `make test-fast` here).
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest
test: venv
	$(COMPILE)
	$(PYTEST) -q -n $(TEST_WORKERS) $(XDIST) --durations=10

# The fast subset for the edit-test loop: the unit and workflow tests (`make test` runs them too),
# the property tests drawing a fifth of their examples (tests/helpers/fuzzing.py). Three workers
# on two cores: many of these tests wait on the time-skipping server or a subprocess, and a
# third worker fills those waits (a fourth cost more CPU than it saved).
FAST_WORKERS ?= 3
test-fast: venv
	$(COMPILE)
	$(PYTEST) -q -n $(FAST_WORKERS) $(XDIST) --hypothesis-profile=fast tests/unit tests/workflow

# What the types are checked on: everything `pip install .` installs.
TYPED := workflows/ activities/ ecs_canary/ cli/ worker.py starter.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy $(TYPED)
	$(BIN)/mypy bench/
# The worker's IAM policy; any finding fails. `--files`, as `--file` refuses to run when stdin
# is not a terminal (CI). The findings accepted on purpose: deploy/parliament.yaml, docs/iam.md.
	$(BIN)/parliament --files deploy/iam-policy.json --include-community-auditors \
		--config deploy/parliament.yaml
# The worker's CloudFormation template (the worker on ECS Fargate); any finding fails.
	$(BIN)/cfn-lint deploy/worker.cfn.yaml

# ECS emulator, Temporal dev server and worker in the background (see scripts/local_stack.sh).
# `make up ECS_CANARY_BUILD_ID=2`: the worker of that build, beside any other that runs
# (README, "Upgrading the worker").
up: venv
	@scripts/local_stack.sh up

down: venv
	@scripts/local_stack.sh down

status: venv
	@scripts/local_stack.sh status

# examples/request.json through all four stages on the local stack; leaves the stack up.
demo: up
	@$(BIN)/python scripts/demo.py

# Benchmarks vs a plain boto3 script; writes BENCHMARKS.md (BENCH_QUICK=1 for a short run).
bench: venv
	$(BIN)/python -m bench.run

clean:
	scripts/local_stack.sh down
	rm -rf $(VENV) $(LOCAL_DIR)
