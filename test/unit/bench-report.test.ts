// The benchmark's option parsing and report logic (bench/options.ts, bench/report.ts, the median of
// bench/kcptun.ts), without running anything: --soak's minutes, and the router path's rows judged
// against issue 10's targets from the same run's direct figures on the same path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOptions } from '../../bench/options';
import { buildRows, derive } from '../../bench/report';
import { Results } from '../../bench/results';
import { median } from '../../bench/stats';

test('--soak takes 15 minutes by default, or the minutes given; not with --smoke', () => {
  const o = parseOptions(['--soak'], {});
  assert.ok(typeof o !== 'string');
  assert.equal(o.soak, 15);
  assert.equal(o.write, true);
  const two = parseOptions(['--soak=2.5', '--no-write'], {});
  assert.ok(typeof two !== 'string');
  assert.equal(two.soak, 2.5);
  assert.equal(two.write, false);
  for (const bad of [['--soak=x'], ['--soak=0'], ['--soak', '--smoke']]) assert.equal(typeof parseOptions(bad, {}), 'string', bad.join(' '));
  const plain = parseOptions([], {});
  assert.ok(typeof plain !== 'string');
  assert.equal(plain.soak, 0);
});

function router(figures: Record<string, number>): Results {
  const r = new Results();
  r.note('mode', 'full');
  for (const [k, v] of Object.entries(figures)) r.res(k, v);
  return r;
}

test('router-path rows: added RTT and rate ratio against the direct figures of the router path', () => {
  const r = router({
    rtr_direct_rate: 100000, rtr_tunnel_rate: 65000,
    rtr_rtt_direct_p50_ms: 0.05, rtr_rtt_tunnel_p50_ms: 0.2, // +0.15: over the +0.1 target
    rtr_rtt_direct_p99_ms: 0.1, rtr_rtt_tunnel_p99_ms: 0.5, // +0.4: within +0.5
    rtr_rtt_direct_p999_ms: 0.3, rtr_rtt_tunnel_p999_ms: 2.3,
    rtr_rtt_paced_direct_p50_ms: 0.05, rtr_rtt_paced_tunnel_p50_ms: 0.1,
    rtr_cpu_us_per_dgram: 12,
    // the veth path's figures must not leak into the router path's
    rtt_direct_p50_ms: 1, rtt_tunnel_p50_ms: 1.01,
  });
  const d = derive(r);
  assert.equal(d.rtr_rate_ratio, 0.65);
  assert.ok(Math.abs(d.rtr_rtt_added_p50_ms - 0.15) < 1e-9);
  assert.ok(Math.abs(d.rtr_rtt_added_p999_ms - 2) < 1e-9);
  assert.ok(Math.abs(d.rtt_added_p50_ms - 0.01) < 1e-9);
  const rows = buildRows(r, d);
  const result = (keys: string) => rows.find((x) => x.keys.join('+') === keys)?.result;
  assert.equal(result('rtr_direct_rate+rtr_tunnel_rate'), 'PASS');
  assert.equal(result('rtr_rtt_direct_p50_ms+rtr_rtt_tunnel_p50_ms'), 'FAIL');
  assert.equal(result('rtr_rtt_direct_p99_ms+rtr_rtt_tunnel_p99_ms'), 'PASS');
  assert.equal(result('rtr_rtt_direct_p999_ms+rtr_rtt_tunnel_p999_ms'), '—');
  assert.equal(result('rtr_rtt_paced_direct_p50_ms+rtr_rtt_paced_tunnel_p50_ms'), 'PASS');
  assert.equal(result('rtr_rtt_paced_direct_p99_ms+rtr_rtt_paced_tunnel_p99_ms'), 'n/a');
  assert.equal(result('rtr_cpu_us_per_dgram'), 'FAIL');
  assert.equal(result('rtt_direct_p50_ms+rtt_tunnel_p50_ms'), 'PASS');
  assert.ok(rows.filter((x) => x.keys.some((k) => k.startsWith('rtr_'))).every((x) => x.metric.startsWith('Router path: ')));
});

test('--busy-poll rows: judged against the same targets and the same direct figures, shown only when measured', () => {
  const none = buildRows(router({ rtt_direct_p50_ms: 0.03, rtt_tunnel_p50_ms: 0.2 }), {});
  assert.ok(!none.some((x) => x.metric.includes('--busy-poll')), 'no rows without figures');
  const r = router({
    rtt_direct_p50_ms: 0.03, rtt_tunnel_p50_ms: 0.2, rtt_busypoll_p50_ms: 0.12, // +0.09: within +0.1
    rtt_direct_p99_ms: 0.1, rtt_busypoll_p99_ms: 0.7, // +0.6: over +0.5
    busypoll_cpu_us_per_dgram: 95,
    rtr_rtt_direct_p50_ms: 0.04, rtr_rtt_busypoll_p50_ms: 0.2,
  });
  r.missing('rtr_busypoll_cpu_us_per_dgram', 'rsock --busy-poll=100: not ready');
  const rows = buildRows(r, derive(r));
  const find = (keys: string) => rows.find((x) => x.keys.join('+') === keys);
  assert.equal(find('rtt_direct_p50_ms+rtt_tunnel_p50_ms')?.result, 'FAIL');
  const p50 = find('rtt_direct_p50_ms+rtt_busypoll_p50_ms');
  assert.equal(p50?.result, 'PASS');
  assert.equal(p50?.rel, '+0.090 ms');
  assert.match(p50!.metric, /^rsock --busy-poll=100: UDP ping-pong RTT p50, one in flight/);
  assert.equal(find('rtt_direct_p99_ms+rtt_busypoll_p99_ms')?.result, 'FAIL');
  assert.equal(find('busypoll_cpu_us_per_dgram')?.result, 'FAIL');
  assert.equal(find('busypoll_cpu_us_per_dgram')?.rs, '95.00');
  assert.equal(find('rtr_rtt_direct_p50_ms+rtr_rtt_busypoll_p50_ms')?.result, 'FAIL');
  assert.match(find('rtr_rtt_direct_p50_ms+rtr_rtt_busypoll_p50_ms')!.metric, /^Router path: rsock --busy-poll=100: /);
  assert.equal(find('rtr_busypoll_cpu_us_per_dgram')?.rs, 'n/a', 'a figure that could not be taken says so');
  assert.ok(!find('rtt_paced_direct_p50_ms+rtt_paced_busypoll_p50_ms'), 'nothing for figures never taken');
});

test('kcptun figures are medians of their rounds: one bad run does not move them', () => {
  assert.equal(median([300, 420, 410, 415]), 412.5);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([7]), 7);
  const rounds = [311, 385, 380, 390];
  assert.equal(median(rounds), 382.5, 'the 311 Mbit/s round weighs no more than any other');
  assert.deepEqual(rounds, [311, 385, 380, 390], 'the rounds are left as they were');
});

test('kcptun rows on both paths, each judged against kcptun over UDP on its own path', () => {
  const r = router({
    kcp_direct_up_mbps: 400, kcp_tunnel_up_mbps: 380, // 0.95
    kcp_direct_down_mbps: 400, kcp_tunnel_down_mbps: 300, // 0.75
    rtr_kcp_direct_up_mbps: 200, rtr_kcp_tunnel_up_mbps: 170, // 0.85: the veth path's baseline would make it 0.425
    rtr_kcp_direct_down_mbps: 200, rtr_kcp_tunnel_down_mbps: 190,
  });
  const d = derive(r);
  assert.equal(d.kcp_up_ratio, 0.95);
  assert.equal(d.rtr_kcp_up_ratio, 0.85);
  const rows = buildRows(r, d);
  const find = (keys: string) => rows.find((x) => x.keys.join('+') === keys);
  assert.equal(find('kcp_direct_up_mbps+kcp_tunnel_up_mbps')?.result, 'PASS');
  assert.equal(find('kcp_direct_down_mbps+kcp_tunnel_down_mbps')?.result, 'FAIL');
  const up = find('rtr_kcp_direct_up_mbps+rtr_kcp_tunnel_up_mbps');
  assert.equal(up?.result, 'FAIL');
  assert.equal(up?.rel, '0.85');
  assert.match(up!.metric, /^Router path: kcptun goodput client→server/);
  assert.equal(find('rtr_kcp_direct_down_mbps+rtr_kcp_tunnel_down_mbps')?.result, 'PASS');
});
