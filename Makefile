# The commands of README.rst: `make run`, `make test` (everything) and `make check` (the fast layer).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PORT ?= 8080
NODES ?= 3

.PHONY: run node test check lint faults bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# An editable install: its .pth puts this checkout on sys.path (pyproject.toml's package-dir),
# where twistd finds twisted/plugins/; the check fails the install if it does not.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/twistd gossipdht --help > /dev/null

run: install
	$(BIN)/python -m gossipdht.tools.localcluster run --nodes $(NODES) --port $(PORT)

node: install
	@echo "gossipdht on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	$(BIN)/twistd --nodaemon --pidfile= gossipdht --port $(PORT) --data-dir gossipdht-data/node-$(PORT)

# The layer contracts of pyproject.toml and the lint.
lint: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check gossipdht tests twisted

test: lint
	$(BIN)/python -m pytest

# Unit and in-memory tests, without tests/integration/.
check: lint
	$(BIN)/python -m pytest -m "not integration" -q

# The fault-injection cases with longer faults, printing their counts (needs root for ip netns).
FAULT_SECONDS ?= 60
faults: install
	FAULT_SECONDS=$(FAULT_SECONDS) $(BIN)/python -m pytest tests/integration/test_faults.py -s -q -p no:cacheprovider

# Starts its own servers and clusters and drives them with wrk (apt-get install wrk).
bench: install
	$(BIN)/python -m gossipdht.tools.bench

clean:
	rm -rf $(VENV) build *.egg-info gossipdht-data twisted/plugins/dropin.cache
