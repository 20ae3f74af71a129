# snncc developer entry points. `make setup` creates both Python environments (see
# scripts/setup.sh); test, demo, bench and lint depend on it, and it takes about a second when
# nothing changed.

PY := .venv/bin/python

.PHONY: setup test demo bench lint clean

setup:
	bash scripts/setup.sh

test: setup
	$(PY) -m pytest -q

demo: setup
	$(PY) examples/demo.py

bench: setup
	$(PY) benchmarks/run_all.py

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

clean:
	rm -rf .venv .venv-runtime .setup-stamp-compile .setup-stamp-runtime .setup-stamp.lock
