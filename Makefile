# The two commands: `make run` (sandbox demo) and `make test` (the whole suite).
# While working: `make test-fast` (the unit layer) and `make lint` (ruff).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint bench serve worker install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: migrate, seed the sandbox, start the web server and a django-q2 cluster together.
run: $(STAMP)
	SANDBOX=1 DEBUG=1 $(PY) manage.py sandbox_up

## make test: the whole suite (unit, sandbox over real HTTP, browser in Chromium).
test: $(STAMP)
	SANDBOX=1 $(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: the unit layer only, in seconds rather than minutes: no live server, no browser, no
## qcluster processes, no benchmark harness (markers: live, browser, bench).
test-fast: $(STAMP)
	SANDBOX=1 $(PY) -m pytest -m "not live and not browser and not bench" $(PYTEST_ARGS)

## make lint: pyflakes and import order ([tool.ruff] in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## make bench: benchmarks; writes BENCHMARKS.md.
bench: $(STAMP)
	SANDBOX=1 $(PY) -m benchmarks.run

## make serve / make worker: production-style processes (gunicorn, qcluster); configure with env vars.
serve: $(STAMP)
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/gunicorn ortto_bridge.wsgi -c gunicorn.conf.py  # BIND, WEB_WORKERS, WEB_THREADS; no query strings logged

worker: $(STAMP)
	$(PY) manage.py qcluster

clean:
	rm -rf $(VENV) db.sqlite3* .test-db.sqlite3* staticfiles
