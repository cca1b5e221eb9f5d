#!/usr/bin/env bash
# One command: install, start a throw-away PostgreSQL on 127.0.0.1, run the whole test suite (slow tests too),
# then ruff and mypy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dataset-fashion-mnist postgresql chromium
if [ "$(id -u)" -eq 0 ] && [ -z "${PIXLABEL_TEST_PG_URL:-}" ]; then
  eval "$(bash .ci/postgres.sh)" || echo "warning: PostgreSQL did not start; its tests will be skipped" >&2
fi
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
# house style: ruff and mypy stay clean (15 mypy errors once crept in unnoticed because nothing ran it)
.venv/bin/ruff check src tests bench || status=1
.venv/bin/mypy || status=1
[ "$(id -u)" -eq 0 ] && bash .ci/postgres.sh stop >/dev/null 2>&1 || true
exit $status
