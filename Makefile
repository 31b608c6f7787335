# The two commands of README.rst: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PORT ?= 8080
NODES ?= 3

.PHONY: run node test faults bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# compat mode keeps twisted/plugins/ of this checkout on sys.path, so twistd finds the plugin.
install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	$(BIN)/python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"

run: install
	$(BIN)/python -m gossipdht.tools.localcluster run --nodes $(NODES) --port $(PORT)

node: install
	@echo "gossipdht on http://127.0.0.1:$(PORT) (Ctrl-C stops it)"
	$(BIN)/twistd --nodaemon --pidfile= gossipdht --port $(PORT) --data-dir gossipdht-data/node-$(PORT)

test: install
	$(BIN)/python -m pytest

# The fault-injection cases with longer faults, printing their counts (needs root for ip netns).
FAULT_SECONDS ?= 60
faults: install
	FAULT_SECONDS=$(FAULT_SECONDS) $(BIN)/python -m pytest tests/test_faults.py -s -q -p no:cacheprovider

# Starts its own servers and clusters and drives them with wrk (apt-get install wrk).
bench: install
	$(BIN)/python -m gossipdht.tools.bench

clean:
	rm -rf $(VENV) build *.egg-info gossipdht-data twisted/plugins/dropin.cache
