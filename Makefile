# The two commands: `make run` and `make test` (see README.md).
VENV ?= .venv
# The interpreter the venv is made from: Debian's CPython when it can make venvs (Debian
# builds it with PGO and LTO, as the image's python:3.11-slim is built): 10-25% less CPU
# per command than a default source build such as pyenv's (BENCHMARKS.md). Else, or when
# PYTHON is given, the python3 on PATH.
SYSTEM_PYTHON := $(shell /usr/bin/python3 -c 'import ensurepip, sys; assert sys.version_info >= (3, 11); print(sys.executable)' 2>/dev/null)
PYTHON ?= $(or $(SYSTEM_PYTHON),python3)
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: run test test-slow install install-test bench clean crash-loop fuzz failover-rounds conformance

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip >/dev/null

# pip compiles what it installs, but not an editable checkout: compile it here, or every
# server start (hundreds in `make test`) recompiles each module when bytecode isn't written.
install: $(VENV)/bin/python
	$(PIP) install -e .
	$(PY) -m compileall -q vermilion >/dev/null

install-test: $(VENV)/bin/python
	$(PIP) install -e '.[test]'
	$(PY) -m compileall -q vermilion >/dev/null

run: install
	$(VENV)/bin/vermilion-server examples/redis.conf

# Two workers, each file whole on one (-n 2 --dist loadfile): the tests mostly wait on
# the servers they start, so two overlap well even on two cores.
test: install-test
	$(PY) -m pytest -q -x -n 2 --dist loadfile --durations=15 tests

# The differential test with many more examples (minutes, not run by `make test`).
test-slow: install-test
	VERMILION_DIFF_EXAMPLES=2000 $(PY) -m pytest -q tests/test_differential.py

# Every redis-benchmark default test, P1 and -P 16, against redis-server, Vermilion and the
# Python floor, then eviction cost, scripts, streams and bytes per key (about 10 minutes);
# BENCH_ARGS="-n 20000 --rounds 1 --out /tmp/b.md" for a quick look (see bench/run.py).
BENCH_ARGS ?=
bench: install-test
	$(PY) bench/run.py $(BENCH_ARGS)

# Reliability at scale (minutes, not run by `make test`, which runs a short version of each;
# see README.md): 100 kill -9 cycles per appendfsync policy under concurrent writes, the
# same against redis-server for comparison; 1M generated frames through the parser and
# 100k over TCP into a server. Seeded: the seed is printed, pass --seed N to replay.
CRASH_LOOP_ARGS ?= --redis
FUZZ_ARGS ?=

crash-loop: install-test
	$(PY) tests/stress/crash_loop.py $(CRASH_LOOP_ARGS)

fuzz: install-test
	$(PY) tests/stress/fuzz_protocol.py $(FUZZ_ARGS)

# High availability (issue 16, not run by `make test`, which runs one round): the HA
# StatefulSet as local processes under three real Sentinels, the master SIGKILLed
# FAILOVER_ROUNDS times in a row (whichever pod is master each time); exits non-zero if a
# WAIT-acknowledged write is lost or a round misses its target.
FAILOVER_ROUNDS ?= 10
failover-rounds: install-test
	$(VENV)/bin/vermilion k8s simulate failover --rounds $(FAILOVER_ROUNDS)

# Redis 7.0.15's own Tcl suite (../shared/conformance, or CONFORMANCE_DIR) against Vermilion
# and beside real redis-server, both modes; writes the table of docs/compatibility.md
# (an hour or more, not run by `make test`). CONFORMANCE_ARGS: e.g. --modes external.
CONFORMANCE_ARGS ?=
conformance: install-test
	$(PY) tools/conformance.py $(CONFORMANCE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
