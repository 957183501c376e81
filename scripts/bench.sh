#!/usr/bin/env bash
# `sudo npm run bench [-- --smoke|--no-write|--keep|--help]`: set-up, then the benchmark
# (bench/main.ts, compiled to dist/bench/main.js; see BENCHMARKS.md). The namespaces and processes
# are removed on exit, failure and Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh >&2
RSOCK_BENCH_VIA="bash scripts/bench.sh" exec node dist/bench/main.js "$@"
