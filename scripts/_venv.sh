# Sourced by the other scripts: make .venv (Python >= 3.11) and install databutler into it.
# Usage: install_databutler [EXTRAS]   e.g. install_databutler test
set -euo pipefail

install_databutler() {
  local extras="${1:-}"
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "databutler needs Python >= 3.11; set PYTHON=/path/to/python3.11 or newer." >&2
    return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
  fi
  local target="."
  [ -n "$extras" ] && target=".[$extras]"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"
}
