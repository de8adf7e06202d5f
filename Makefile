# hpcprep: `make demo` runs the examples, `make test` runs the tests.
# Each target creates the project virtual environment (.venv) and installs what it
# needs from scratch: Debian packages the tests use, the core, and every plugin folder
# that has a pyproject.toml.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
# Debian packages the tests and the demo use (real data and reference tools).
APT_PACKAGES :=
APT_STAMP := $(VENV)/.apt-installed
DEMO := build/demo
DEMO_ENV := PYTHONPATH=$(CURDIR)/$(DEMO)/site

.PHONY: all install sysdeps test demo bench lint clean

all: test

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e ".[test,lint]"
	for p in $(dir $(PLUGIN_PROJECTS)); do $(PIP) install -q -e "$$p" || exit 1; done
	touch $(STAMP)

$(APT_STAMP): Makefile
	@mkdir -p $(VENV)
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi
	touch $(APT_STAMP)

install: $(STAMP)

sysdeps: $(APT_STAMP)

test: $(APT_STAMP) $(STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/pytest -q

# The core-only demo: scaffold a plugin the way a user would, install it beside the
# core, run examples/core_files.toml (real files -> Numba byte histograms -> Parquet
# and LanceDB), then search the vectors.
demo: $(APT_STAMP) $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(VENV)/bin/hpcprep new-plugin bytes --dir $(DEMO)
	$(PIP) install -q --no-deps --no-build-isolation --target $(DEMO)/site $(DEMO)/hpcprep-bytes
	$(DEMO_ENV) $(VENV)/bin/hpcprep plugins
	$(DEMO_ENV) $(VENV)/bin/hpcprep plan examples/core_files.toml
	$(DEMO_ENV) RAY_USAGE_STATS_ENABLED=0 $(VENV)/bin/hpcprep run examples/core_files.toml --overwrite
	$(DEMO_ENV) $(VENV)/bin/hpcprep search out/core_files/vectors --table files -k 5 \
		--id $$($(PY) -c "import hpcprep; print(hpcprep.record_id('/usr/share/common-licenses/GPL-3'))")

bench: $(STAMP)
	RAY_USAGE_STATS_ENABLED=0 $(PY) benchmarks/runner_scaling.py

lint: $(STAMP)
	$(VENV)/bin/ruff check core tests benchmarks

clean:
	rm -rf $(VENV) build out .pytest_cache
