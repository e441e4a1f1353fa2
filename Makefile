# Every target installs what it needs first: a fresh machine needs only
# Python 3.11+, Java 17+ and Maven (PostgreSQL comes from Debian's package,
# Kafka's jars from Maven Central).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := deploy/local/stack.sh

.PHONY: setup demo test lint bench up down status clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed
	$(STACK) install

demo: setup
	$(BIN)/python deploy/demo/run_demo.py

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m tests.benchmarks

up: setup
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

clean: down
	rm -rf .local $(VENV)
