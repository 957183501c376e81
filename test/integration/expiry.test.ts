// Flow expiry with --duration=3, observed independently of the program's logs: the server's UDP
// socket for the flow (ss -uanp in the server ns: owned by the server PID, connected to the target)
// disappears within duration + EXPIRY_SLACK_MS after the traffic stops, and an "expired" line is logged.
// One-direction traffic (client -> server only) keeps the flow alive.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc, pollUntil, sleep } from '../lib/proc';
import { EXPIRY_SLACK_MS, LOG, RsockOptions, serverFlowSockets, startTunnel } from '../lib/rsock';
import { startOneWay, startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const DURATION_S = 3;
const opts: RsockOptions = { duration: DURATION_S, keepalive: 2 };
const topo = new Topology();
let server: Proc;
let echo: Proc;

before(topo.guard(async () => {
  await topo.up();
  echo = await startUdpEcho(topo);
  ({ server } = await startTunnel(topo, { server: opts, client: opts }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

/** Waits until the server has no flow socket left; returns how long that took, or -1. */
async function waitNoFlowSockets(boundMs: number): Promise<number> {
  const t0 = Date.now();
  const ok = await pollUntil(async () => (await serverFlowSockets(topo, server.pid)).length === 0, boundMs, 200);
  return ok ? Date.now() - t0 : -1;
}

test(`an idle flow expires after --duration=${DURATION_S}`, { timeout: 60_000 }, topo.guard(async () => {
  // Flows from the readiness probe may still exist: let them expire first.
  assert.ok((await waitNoFlowSockets(DURATION_S * 1000 + EXPIRY_SLACK_MS)) >= 0, 'earlier flows never expired');
  const mark = server.mark();
  const r = await udpEcho(topo, { count: 20, rate: 100 });
  assert.ok(r.ratio >= 0.95, `only ${r.received}/${r.sent} echoed`);
  const socks = await serverFlowSockets(topo, server.pid);
  assert.equal(socks.length, 1, `expected one server socket connected to the target for the flow, ss shows ${JSON.stringify(socks)}`);
  const ms = await waitNoFlowSockets(DURATION_S * 1000 + EXPIRY_SLACK_MS);
  console.log(`expiry: flow socket ${socks[0].local} gone ${ms} ms after the last echo (duration ${DURATION_S} s)`);
  assert.ok(ms >= 0, `flow socket still open ${DURATION_S * 1000 + EXPIRY_SLACK_MS} ms after the traffic stopped`);
  assert.ok(ms >= DURATION_S * 1000 - 1500, `flow expired too early: ${ms} ms after the traffic stopped`);
  await server.waitFor(LOG.expired, 2000, mark);
}));

test('one-direction traffic (client -> server only) keeps the flow alive', { timeout: 60_000 }, topo.guard(async () => {
  const COUNT = 20;
  const INTERVAL_MS = 500; // 10 s of one-way traffic, > 3 x duration
  const serverMark = server.mark();
  const echoMark = echo.mark();
  const sender = startOneWay(topo, COUNT, INTERVAL_MS);
  const first = await pollUntil(async () => (await serverFlowSockets(topo, server.pid))[0], 5000, 100);
  assert.ok(first, 'no server flow socket appeared for the one-way traffic');
  const tEnd = Date.now() + (COUNT - 2) * INTERVAL_MS;
  let checks = 0;
  for (let i = 0; i < 200 && Date.now() < tEnd; i++) {
    const socks = await serverFlowSockets(topo, server.pid);
    assert.ok(socks.some((s) => s.local === first.local), `flow socket ${first.local} disappeared during one-way traffic (now ${JSON.stringify(socks)})`);
    checks++;
    await sleep(250);
  }
  assert.ok(await sender.waitExit(5000), 'one-way sender did not finish');
  const sunk = echo.output().slice(echoMark).split('\n').filter((l) => l.includes('"sink"')).length;
  console.log(`expiry: one-way flow ${first.local} stayed up for ${(COUNT - 2) * INTERVAL_MS} ms (${checks} checks), ${sunk}/${COUNT} datagrams arrived`);
  assert.ok(sunk >= COUNT - 1, `only ${sunk}/${COUNT} one-way datagrams reached the target`);
  assert.doesNotMatch(server.output().slice(serverMark), LOG.expired, 'server expired a flow during one-way traffic');
  // ... and once it stops, the flow expires.
  const ms = await waitNoFlowSockets(DURATION_S * 1000 + EXPIRY_SLACK_MS);
  console.log(`expiry: one-way flow gone ${ms} ms after the sender stopped`);
  assert.ok(ms >= 0, 'one-way flow never expired after the traffic stopped');
}));
