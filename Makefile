# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_out

.PHONY: demo test lint bench check-aarch64 chromium clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[train,edge,dev]"
	$(PY) -m pip check
	touch $@

demo: $(VENV)/.installed
	$(PY) -m kerasdance.demo --out $(DEMO_DIR)

# The live view's browser test needs Debian's chromium: installed when missing and we are root (else it skips).
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (apt-get) for the live view's browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi

test: $(VENV)/.installed chromium
	$(PY) -m ruff check kerasdance edge tools tests benchmarks
	$(PY) -m pytest -q --timeout=600 tests

lint: $(VENV)/.installed
	$(PY) -m ruff check kerasdance edge tools tests benchmarks

bench: $(VENV)/.installed
	$(PY) -m benchmarks.run_all

# Which device requirements have wheels for a 64-bit ARM board (needs the package index); writes BENCHMARKS.md.
check-aarch64: $(VENV)/.installed
	$(PY) -m benchmarks.check_aarch64

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache build *.egg-info
