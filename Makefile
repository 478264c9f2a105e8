# The README's two commands are `make demo` and `make test`; everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Re-install whenever pyproject.toml changes; the stamp records which extras were installed.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
MYPY_SRC := $(VENV)/mypy-src

.PHONY: demo test lint format bench wheel-check clean install dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP)
dev: $(DEV_STAMP)

# Seeds (or tops up) the demo ledger, prints what to open, then serves it until Ctrl-C,
# with its two witnesses (two other provinces' councils, demo) cosigning each checkpoint.
DEMO_ENV := TRACE_DATABASE_URL=sqlite:///$(CURDIR)/demo/trace.db TRACE_KEY_DIR=$(CURDIR)/demo/keys \
	TRACE_WITNESS_POLICY=$(CURDIR)/demo/witnesses/policy.txt
demo: $(RUNTIME_STAMP)
	$(BIN)/ocop-trace demo --dir demo
	$(DEMO_ENV) bash -c 'trap "kill 0" EXIT; \
	  $(BIN)/ocop-trace witness serve --dir demo/witnesses/hoi-dong-ocop-cao-bang-demo --port 8701 & \
	  $(BIN)/ocop-trace witness serve --dir demo/witnesses/hoi-dong-ocop-lang-son-demo --port 8702 & \
	  $(BIN)/ocop-trace serve --host 127.0.0.1 --port 8000'

# mypy cannot follow setuptools' editable-install import hook, so it reads the sources
# through links carrying the installed package names.
$(MYPY_SRC):
	mkdir -p $(MYPY_SRC)
	ln -sfn $(CURDIR)/trace $(MYPY_SRC)/ocop_trace
	ln -sfn $(CURDIR)/ledger $(MYPY_SRC)/ledger

lint: $(DEV_STAMP) $(MYPY_SRC)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	MYPYPATH=$(MYPY_SRC) $(BIN)/mypy -p ledger -p ocop_trace

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest

# Every script runs; the target fails if any reports a figure below its target. The
# server benchmarks measure PostgreSQL too when TRACE_TEST_POSTGRES_URL is set.
bench: $(DEV_STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk || echo "install wrk for the scan-page and tiles benchmarks"
	$(BIN)/python tests/bench/run.py; a=$$?; $(BIN)/python tests/bench/labels_bench.py; b=$$?; \
	$(BIN)/python tests/bench/scan_bench.py; c=$$?; \
	PYTHONPATH=tests $(BIN)/python tests/bench/login_flood.py; d=$$?; \
	PYTHONPATH=tests $(BIN)/python tests/bench/api_throughput.py; e=$$?; \
	$(BIN)/python tests/bench/tiles_http.py; f=$$?; \
	$(BIN)/python tests/bench/webapp_bench.py && \
	$(BIN)/python tests/bench/webapp_bench.py --entries 1000000; g=$$?; \
	PYTHONPATH=tests $(BIN)/python tests/bench/search_bench.py; h=$$?; \
	PYTHONPATH=tests $(BIN)/python tests/bench/witness_bench.py; j=$$?; \
	if [ -n "$$TRACE_TEST_POSTGRES_URL" ]; then $(BIN)/python tests/bench/scale.py --small && \
	$(BIN)/python tests/bench/verify_at_size.py --entries 300000 && \
	PYTHONPATH=tests $(BIN)/python tests/bench/fleet_bench.py; i=$$?; \
	else echo "set TRACE_TEST_POSTGRES_URL for the scale benchmark"; i=0; fi; \
	exit $$((a | b | c | d | e | f | g | h | i | j))

# Build the wheel and run the installed command from a fresh environment outside the
# repository, so a missing package file or an import-name mistake fails here.
wheel-check: $(DEV_STAMP)
	bash .ci/wheel-check

clean:
	rm -rf build dist *.egg-info demo .pytest_cache .mypy_cache .ruff_cache
