#!/usr/bin/env bash
# `sudo npm run demo`: set-up, then a client/router/server namespace demo of the tunnel
# (test/lib/demo.ts). The namespaces and processes are removed on exit, failure and Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node dist/test/lib/demo.js
