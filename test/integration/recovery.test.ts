// Recovery: the tunnel carries traffic again by itself, within RECOVERY_BOUND_MS,
//  (a) after the router resets its connections (reject with tcp reset for ~1 s), and
//  (b) after the server is stopped by PID and started again (SIGTERM, then SIGKILL), within 3 s of the
//      new server's "ready".
// Recovery times are printed.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { NFT, Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { LOG, PORTS, RECOVERY_BOUND_MS, RsockOptions, startServer, startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const opts: RsockOptions = { keepalive: 2 };
const BACK_WITHIN_MS = 3000;
const topo = new Topology();
let server: Proc;
let client: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ({ server, client } = await startTunnel(topo, { server: opts, client: opts }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

async function echoWorks(what: string): Promise<void> {
  const r = await udpEcho(topo, { count: 200, rate: 400 });
  console.log(`recovery: after ${what}: ${r.received}/${r.sent} echoed, rtt p50=${r.rttMs.p50} ms`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.99, `after ${what}: only ${r.received}/${r.sent} echoed`);
}

test('router resets the connections for 1 s: echo comes back by itself', { timeout: RECOVERY_BOUND_MS + 40_000 }, topo.guard(async () => {
  const mark = client.mark();
  const rule = await topo.addRule(NFT.fwd, `tcp dport ${PORTS} counter reject with tcp reset`);
  // Traffic during the outage, so that the router has segments to answer with RSTs.
  const during = topo.spawnHelper('client', 'udp-probe.js', ['echo', '--to', '127.0.0.1:30000', '--count', '40', '--rate', '40', '--wait', '100'], 'probe-during-reset');
  await sleep(1000);
  const rejected = (await topo.ruleCounter(NFT.fwd, rule)).packets;
  await topo.deleteRule(NFT.fwd, rule);
  const t0 = Date.now();
  await during.waitExit(5000);
  const r = await untilEcho(topo, RECOVERY_BOUND_MS);
  const reconnected = LOG.up.test(client.output().slice(mark));
  console.log(`recovery: router rejected ${rejected} segments with RSTs in 1 s; echo back ${r.ok ? r.at - t0 : 'never'} ms after the rule was removed; ` +
    `client logged "up" again: ${reconnected}`);
  assert.ok(rejected > 0, 'the reject rule never fired: the test did not disturb the tunnel');
  assert.ok(r.ok, `no echo within ${RECOVERY_BOUND_MS} ms after the reset`);
  await echoWorks('router reset');
}));

for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
  test(`server stopped by PID (${sig}) and started again: echo resumes`, { timeout: RECOVERY_BOUND_MS + 40_000 }, topo.guard(async () => {
    const tKill = Date.now();
    await server.stop(3000, sig);
    assert.ok(!server.running, 'old server is gone');
    const mark = client.mark();
    server = await startServer(topo, opts, `rsock-server-after-${sig}`);
    const tReady = Date.now();
    const r = await untilEcho(topo, RECOVERY_BOUND_MS);
    const reconnected = LOG.up.test(client.output().slice(mark));
    console.log(`recovery: server ${sig}: new server ready ${tReady - tKill} ms after the kill; echo back ${r.ok ? r.at - tReady : 'never'} ms after ready ` +
      `(${r.ok ? r.at - tKill : '-'} ms after the kill); client logged "up": ${reconnected}`);
    assert.ok(r.ok, `no echo within ${RECOVERY_BOUND_MS} ms after the server restart`);
    // Issue 9: back within 3 s of the server being back, however it died (a SIGKILL leaves no word on the wire).
    assert.ok(r.at - tReady <= BACK_WITHIN_MS, `echo back ${r.at - tReady} ms after the restarted server was ready (bound ${BACK_WITHIN_MS} ms)`);
    // The first echo can come through the first connection redialed while others still wait for their
    // reset (a reset on one makes the client check the rest at once): the full load once all are back.
    const all = await client.waitFor(/ (\d+)\/\1 live/, BACK_WITHIN_MS, mark).then(() => true, () => false);
    assert.ok(all, `not every connection was live again within ${BACK_WITHIN_MS} ms of the first echo`);
    await echoWorks(`server restart (${sig})`);
  }));
}
