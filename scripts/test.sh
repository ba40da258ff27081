#!/usr/bin/env bash
# The whole test suite: lint, types, unit and functional tests (both
# databases, real namespaces and Open vSwitch). Needs root for the
# functional part. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
bash scripts/ensure-postgres.sh
echo "==> ruff"
.venv/bin/ruff check netplex tests bench
echo "==> mypy"
.venv/bin/mypy netplex
echo "==> pytest"
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
