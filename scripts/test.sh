#!/usr/bin/env bash
# Set up and run every test: installs databutler with its test dependencies
# into .venv, starts a throwaway PostgreSQL on 127.0.0.1 (installing it when
# missing and running as root), runs pytest, and stops the server again.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k bridge`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/_postgres.sh

install_databutler test
trap stop_postgres EXIT
start_postgres
.venv/bin/python -m pytest "$@"
