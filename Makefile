# Two entry points, both self-contained on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/tiergate: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/tiergate

.PHONY: install browser demo test lint
install: $(BIN)/tiergate

# The dashboard is tested in Debian's chromium (Playwright's own browser download is not
# reachable here); without root or apt the browser test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium; } \
		|| echo "chromium not installed: the browser test will be skipped"

demo: install
	$(BIN)/tiergate demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile
