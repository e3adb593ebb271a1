# ecs-canary: every target works on a fresh machine; `make venv` installs everything else needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL := .local

export TEMPORAL_PORT ?= 7233
export TEMPORAL_UI_PORT ?= 8233
export ECS_EMULATOR_PORT ?= 5000

.PHONY: venv test lint up down status demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(LOCAL)
