#!/usr/bin/env bash
# Set up databutler in .venv and run the bridge demo on the embedded default
# (SQLite in a temporary folder). Extra arguments go to the demo (--help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

install_databutler
.venv/bin/python -m databutler.demo "$@"
