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

# Python keeps the bytecode it compiles, in every process a target starts: where
# PYTHONDONTWRITEBYTECODE is set, each process the tests start (workers, emulators, the
# starter) would compile moto, scipy and the SDK from source again (100 s of a fresh clone's
# `make test` once).
export PYTHONDONTWRITEBYTECODE :=

# uv (from PyPI, pinned) resolves and installs the project's pins in parallel: about 5 s on a
# fresh machine, where pip took 60-70 s of the 5-minute `make test` budget. uv leaves the
# packages uncompiled; compiling all of them (its --compile-bytecode) took 15 s here, mostly
# on what nothing here imports (cfn-lint's sympy and networkx, pip, most of moto and scipy).
# Instead one process collects the tests, which imports what they and the worker, starter
# and emulator import, and keeps that bytecode (about 9 s of one core); what is imported later
# (scipy's tests of significance, altair) is compiled by its first process. Its exit status
# is ignored: a test module that does not import is `make test`'s to report.
UV_VERSION := 0.13.9
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e '.[dev]'
	-$(BIN)/python -m pytest --collect-only -q -p no:cacheprovider >/dev/null 2>&1
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
# the result beside the module's bytecode (PYTHONDONTWRITEBYTECODE is cleared above): the next
# run's workers skip that (about 10 s of CPU in `make test-fast` here).
PYTEST := $(BIN)/python -m pytest
test: venv
	$(COMPILE)
	$(PYTEST) -q -n $(TEST_WORKERS) $(XDIST) --durations=10

# The fast subset for the edit-test loop: the unit and workflow tests (`make test` runs them too),
# the property tests drawing a fifth of their examples (tests/helpers/fuzzing.py), without the
# `checker` tests, which run cfn-lint, parliament, check-jsonschema and promtool over files
# that rarely change (3 s of CPU; `make lint` runs the first two as well). Three workers
# on two cores: many of these tests wait on the time-skipping server or a subprocess, and a
# third worker fills those waits (a fourth cost more CPU than it saved).
FAST_WORKERS ?= 3
test-fast: venv
	$(COMPILE)
	$(PYTEST) -q -n $(FAST_WORKERS) $(XDIST) --hypothesis-profile=fast -m 'not checker' \
		tests/unit tests/workflow

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
