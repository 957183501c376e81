// Recovery within 3 s, by design (issue 9), inside one app flow (test/lib/outage.ts): the path cut
// completely at the router for 2 s and for 30 s, the router's link to the server down for 5 s (its
// routes and neighbours go too), and the server killed with SIGKILL and started again 15 s later.
// The 3-minute cut is in outage-long.test.ts (each file must finish within the suite's 300 s backstop).
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { startServer, startTunnel } from '../lib/rsock';
import { startUdpEcho, untilEcho } from '../lib/traffic';
import { cutPath, throughOneFlow } from '../lib/outage';

const topo = new Topology();
let server: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ({ server } = await startTunnel(topo));
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

for (const [label, ms] of [['2 s', 2_000], ['30 s', 30_000]] as const) {
  test(`the path is cut for ${label}: the flow's echoes resume within 3 s`, { timeout: ms + 60_000 }, topo.guard(async () => {
    await throughOneFlow(topo, `path cut for ${label}`, ms, () => cutPath(topo, ms));
  }));
}

test('the router\'s link to the server goes down for 5 s and comes back: the flow\'s echoes resume within 3 s', { timeout: 60_000 }, topo.guard(async () => {
  await throughOneFlow(topo, 'link flap, 5 s down', 5_000, async () => {
    const t0 = Date.now();
    await topo.exec('router', ['ip', 'link', 'set', 'dev', topo.dev.routerServer, 'down']);
    await sleep(5_000);
    await topo.exec('router', ['ip', 'link', 'set', 'dev', topo.dev.routerServer, 'up']);
    return Date.now() - t0;
  });
}));

test('the server is killed (SIGKILL) and started 15 s later: the flow\'s echoes resume within 3 s of its "ready"', { timeout: 90_000 }, topo.guard(async () => {
  await throughOneFlow(topo, 'server SIGKILL, restart after 15 s', 17_000, async () => {
    const t0 = Date.now();
    await server.stop(3000, 'SIGKILL');
    assert.ok(!server.running, 'the old server is gone');
    await sleep(15_000);
    server = await startServer(topo, {}, 'rsock-server-restarted');
    return Date.now() - t0;
  });
}));
