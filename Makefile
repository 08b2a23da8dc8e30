# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test docs bench clean serve

# The distribution was called `pyconnector` before its rename: an old venv drops that install.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip uninstall --quiet --yes pyconnector 2>/dev/null || true
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS)

serve: $(STAMP)
	$(VENV)/bin/pyconnector serve

docs: $(STAMP)
	$(PY) -m pyconnector_server.settings docs/configuration.md
	$(PY) -m pyconnector_server.apidoc docs/api.md

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .coverage
