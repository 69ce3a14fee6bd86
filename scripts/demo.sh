#!/usr/bin/env bash
# Set up databutler in .venv and run its demo on the embedded default
# (SQLite and local files). Give a directory for the repository, or none for a
# temporary one; --help shows the options.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh

install_databutler
.venv/bin/databutler demo "$@"
