// --busy-poll through the CLI, client ns -> strict conntrack router -> server ns: datagrams are echoed
// intact; while they keep coming faster than the window, neither end's event loop sleeps between
// them (its main thread's voluntary context switches stay far below one per datagram); once they
// stop, the loops sleep again (no CPU burnt while idle). How much latency it buys is a benchmark's
// question (BENCHMARKS.md), not this test's.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { clockTicks, cpuTicks, mainThreadSleeps } from '../lib/procstat';
import { startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

/** The longest window: udp-probe sends its datagrams in bursts every 2-3 ms, each well within the window the one before opened. */
const WINDOW_US = 10000;
const ECHO = { count: 2000, min: 64, max: 1200, rate: 2000 };

const topo = new Topology();
let ends: { server: Proc; client: Proc };
before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  const flag = [`--busy-poll=${WINDOW_US}`];
  ends = await startTunnel(topo, { server: { extra: flag }, client: { extra: flag } });
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

test('both ends say they busy-poll', () => {
  for (const p of [ends.server, ends.client]) assert.match(p.output(), new RegExp(`busy polling: the event loop keeps polling for ${WINDOW_US} µs after input`));
});

test('datagrams are echoed intact, and neither loop sleeps between datagrams that come within the window', { timeout: 60_000 }, topo.guard(async () => {
  const pids = [ends.client.pid!, ends.server.pid!];
  const before = pids.map(mainThreadSleeps);
  const r = await udpEcho(topo, { ...ECHO, waitMs: 1000 });
  const after = pids.map(mainThreadSleeps);
  const slept = after.map((a, i) => a - before[i]);
  console.log(`busy-poll: ${r.received}/${r.sent} echoed, rtt p50=${r.rttMs.p50} ms p99=${r.rttMs.p99} ms; main threads slept ${slept.join(' / ')} times (client / server)`);
  assert.equal(r.bad, 0, 'echoed datagrams must be byte-for-byte identical');
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  // Without busy polling each end sleeps at least once per burst (about 400 times; 430 with a window shorter than the bursts' spacing).
  for (const [i, who] of ['client', 'server'].entries()) {
    assert.ok(slept[i] < ECHO.count / 10, `rsock-${who}'s loop slept ${slept[i]} times over ${ECHO.count} datagrams`);
  }
}));

test('once the datagrams stop, both loops sleep again: next to no CPU while idle', { timeout: 30_000 }, topo.guard(async () => {
  await sleep(500);
  const pids = [ends.client.pid!, ends.server.pid!];
  const t0 = pids.map((p) => cpuTicks(p)!);
  const secs = 2;
  await sleep(secs * 1000);
  const pct = pids.map((p, i) => ((cpuTicks(p)! - t0[i]) * 100) / clockTicks() / secs);
  console.log(`busy-poll: idle CPU ${pct.map((x) => x.toFixed(1)).join(' / ')} % of a core (client / server)`);
  for (const [i, who] of ['client', 'server'].entries()) assert.ok(pct[i] < 5, `rsock-${who} used ${pct[i].toFixed(1)} % of a core while idle`);
}));
