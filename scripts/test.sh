#!/usr/bin/env bash
# The test suite: set-up (packages, npm, addon, tsc), then every compiled test file, one file at a time.
#   bash scripts/test.sh                          all unit, native and integration tests
#   bash scripts/test.sh dist/test/integration/echo.test.js ...   only these files
# Needs root (network namespaces, raw sockets): `sudo npm test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

if [ $# -gt 0 ]; then
  files=("$@")
else
  shopt -s nullglob
  files=(dist/test/unit/*.test.js dist/test/native/*.test.js dist/test/integration/*.test.js)
  shopt -u nullglob
fi
[ ${#files[@]} -gt 0 ] || { echo "test: no compiled test files found under dist/test" >&2; exit 1; }

echo "test: running ${#files[@]} test files"
# Each file bounds its own tests; --test-timeout is a backstop per test.
exec node --test --test-concurrency=1 --test-timeout=300000 "${files[@]}"
