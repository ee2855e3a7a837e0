#!/usr/bin/env bash
# Sets up what the tests need (venv, PostgreSQL running) and runs lint + the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  touch "$VENV/.installed"
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
"$VENV/bin/ruff" check .
"$VENV/bin/mypy" domain
"$VENV/bin/python" -m pytest -q "$@"
