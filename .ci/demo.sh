#!/usr/bin/env bash
# Set up and run the main job: JupyterLab on the quickstart notebook (or, with --terminal, a
# terminal demo that counts ResNet-50 and explains its first convolution).
# Works as a user and as root (JupyterLab then needs --allow-root); prints the URL to open.
# PORT (default 8888) and TOKEN (default: a random one) can be set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup.sh "test"
if [ "${1:-}" = "--terminal" ]; then
  exec .venv/bin/python -m nbcount resnet50 --derive conv1
fi
port="${PORT:-8888}"
token="${TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')}"
notebooks="$PWD/notebooks"  # the server's root: the URL below names the notebook relative to it
args=(--ip=127.0.0.1 "--port=$port" --ServerApp.port_retries=0 "--IdentityProvider.token=$token"
      "--ServerApp.root_dir=$notebooks")
if [ "$(id -u)" = "0" ]; then
  args+=(--allow-root)
fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" != "Darwin" ]; then
  args+=(--no-browser)  # no desktop to open a browser on: open the URL below yourself
fi
echo
echo "nbcount demo: open http://127.0.0.1:$port/lab/tree/quickstart.ipynb?token=$token"
echo "(Ctrl-C stops JupyterLab)"
echo
exec .venv/bin/jupyter lab "${args[@]}" "$notebooks/quickstart.ipynb"
