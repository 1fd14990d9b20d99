# Two commands set everything up on a fresh machine:
#   make demo   create .venv (first time), then encode and decode the bundled sample photo
#   make test   create .venv (first time), then run the test suite (slow tests excluded)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.licodec-installed

.PHONY: demo test test-all bench results clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/licodec demo

test: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q -m "not slow"

test-all: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/kodak_rd.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/memory.py

results: $(STAMP)
	$(BIN)/python benchmarks/results_page.py

clean-venv:
	rm -rf $(VENV)
