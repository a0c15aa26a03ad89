#!/usr/bin/env bash
# Debian's chromium for the browser test (Playwright's own browser download does not work here).
set -uo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then echo "not root: skipping the chromium install" >&2; exit 0; fi
install() { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
install >/dev/null || { sleep 10; install; }
