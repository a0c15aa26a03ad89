#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-chromium.sh
bash .ci/setup.sh "test,peers"
.venv/bin/ruff check .
.venv/bin/mypy nbcount
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
