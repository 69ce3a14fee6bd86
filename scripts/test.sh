#!/usr/bin/env bash
# Set up and run every test: installs databutler with its test dependencies
# into .venv, runs ruff and mypy (stopping at the first lint error), starts a
# throwaway PostgreSQL on 127.0.0.1 (installing it when missing and running as
# root), runs pytest, and stops the server again.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k bridge`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_postgres.sh

install_databutler test
# Lint first and fail fast: ruff, then mypy --strict on src, tests and benchmarks
# (the files and the relaxations for tests are in pyproject.toml).
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
trap stop_postgres EXIT
start_postgres
.venv/bin/python -m pytest "$@"
