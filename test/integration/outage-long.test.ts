// Recovery within 3 s after a long outage (issue 9): the path cut completely at the router for 3 minutes,
// while one app flow keeps sending (test/lib/outage.ts). By then every connection has gone down and
// the slots' backoff has grown to its 10 s ceiling: the recovery probe must find the path back anyway.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { startTunnel } from '../lib/rsock';
import { startUdpEcho, untilEcho } from '../lib/traffic';
import { cutPath, throughOneFlow } from '../lib/outage';

const topo = new Topology();
const MS = 180_000;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  await startTunnel(topo);
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

test('the path is cut for 3 minutes: the flow\'s echoes resume within 3 s', { timeout: MS + 60_000 }, topo.guard(async () => {
  await throughOneFlow(topo, 'path cut for 3 minutes', MS, () => cutPath(topo, MS));
}));
