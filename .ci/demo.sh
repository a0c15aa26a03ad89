#!/usr/bin/env bash
# Set up and run the main job: JupyterLab on the quickstart notebook (or, with --terminal, a
# terminal demo that counts ResNet-50 and explains its first convolution).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh "test"
if [ "${1:-}" = "--terminal" ]; then
  exec .venv/bin/python -m nbcount resnet50 --derive conv1
fi
exec .venv/bin/jupyter lab --ip=127.0.0.1 notebooks/quickstart.ipynb
