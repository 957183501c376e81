// A few seconds of the benchmark (bench/main.ts --smoke): it must produce numbers. The figures
// themselves are judged by `sudo npm run bench`, not here: timing on a shared machine is no test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..', '..');

test('bench --smoke measures direct and tunnel rate, RTT and memory', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'main.js'), '--smoke'], { cwd: ROOT, encoding: 'utf8', timeout: 110_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `bench --smoke exited ${r.status} (${r.signal ?? ''}):\n${out.slice(-3000)}`);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  assert.ok(line, `no BENCH_JSON line:\n${out.slice(-3000)}`);
  const m = JSON.parse(line.slice('BENCH_JSON '.length)).metrics as Record<string, number>;
  for (const k of ['direct_rate', 'tunnel_rate', 'rtt_direct_p50_ms', 'rtt_tunnel_p50_ms', 'rtt_tunnel_p99_ms', 'rss_idle_client_mb', 'rss_idle_server_mb']) {
    assert.ok(Number.isFinite(m[k]) && m[k] > 0, `${k} = ${m[k]}`);
  }
  assert.ok(m.tunnel_rate <= m.direct_rate * 1.5, `tunnel ${m.tunnel_rate}/s vs direct ${m.direct_rate}/s: the baseline looks broken`);
  console.log(`bench smoke: direct ${m.direct_rate}/s, tunnel ${m.tunnel_rate}/s, added RTT p50 ${m.rtt_added_p50_ms} ms`);
});
