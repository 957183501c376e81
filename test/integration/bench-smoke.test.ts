// A few seconds of the benchmark (bench/main.ts --smoke): it must produce numbers. The figures
// themselves are judged by `sudo npm run bench`, not here: timing on a shared machine is no test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';

const ROOT = path.join(__dirname, '..', '..', '..');

test('bench --smoke measures direct and tunnel rate, RTT and memory, on the veth and the router path', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'main.js'), '--smoke'], { cwd: ROOT, encoding: 'utf8', timeout: 110_000 });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `bench --smoke exited ${r.status} (${r.signal ?? ''}):\n${out.slice(-3000)}`);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  assert.ok(line, `no BENCH_JSON line:\n${out.slice(-3000)}`);
  const m = JSON.parse(line.slice('BENCH_JSON '.length)).metrics as Record<string, number>;
  const rtt = ['rtt', 'rtt_paced'].flatMap((k) => ['direct', 'tunnel'].flatMap((w) => ['p50', 'p99', 'p999'].map((q) => `${k}_${w}_${q}_ms`)));
  for (const k of ['direct_rate', 'tunnel_rate', ...rtt, 'rss_idle_client_mb', 'rss_idle_server_mb',
    'rtr_direct_rate', 'rtr_tunnel_rate', ...rtt.map((x) => `rtr_${x}`)]) {
    assert.ok(Number.isFinite(m[k]) && m[k] > 0, `${k} = ${m[k]}`);
  }
  for (const p of ['', 'rtr_']) {
    assert.ok(m[`${p}tunnel_rate`] <= m[`${p}direct_rate`] * 1.5, `${p}tunnel ${m[`${p}tunnel_rate`]}/s vs direct ${m[`${p}direct_rate`]}/s: the baseline looks broken`);
    assert.ok(m[`${p}rtt_direct_p50_ms`] <= m[`${p}rtt_direct_p999_ms`], `${p}rtt: p50 above p99.9`);
  }
  console.log(`bench smoke: direct ${m.direct_rate}/s, tunnel ${m.tunnel_rate}/s, added RTT p50 ${m.rtt_added_p50_ms} ms; ` +
    `router path: direct ${m.rtr_direct_rate}/s, tunnel ${m.rtr_tunnel_rate}/s, added RTT p50 ${m.rtr_rtt_added_p50_ms} ms`);
});
