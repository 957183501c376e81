// kcptun through the tunnel with 10 % random loss on the router (issue 9): 10 MB each way, sha256
// checked at both ends. The router drops one TCP packet in ten from either side, at random, before
// conntrack sees it (test/lib/router-loss.ts).
// rsock never retransmits, so each loss reaches kcptun, whose ARQ must repair it; afterwards the router
// has seen no INVALID segment: the lost segments leave no hole that conntrack would object to.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { addRouterLoss, routerLossDrops } from '../lib/router-loss';
import { Proc } from '../lib/proc';
import { startTunnel, testKey } from '../lib/rsock';
import { serveResult, startKcptunClient, startKcptunServer, startTcpServe, tcpTransfer } from '../lib/traffic';

const BYTES = 10_000_000;
const TRANSFER_TIMEOUT_MS = 150_000;
const SINK = '127.0.0.1:7100';
const KCP_LOCAL = '127.0.0.1:7200';

const topo = new Topology();
let serve: Proc;

before(topo.guard(async () => {
  await topo.up();
  serve = await startTcpServe(topo, 'server', SINK);
  await startTunnel(topo);
  const key = testKey(topo);
  startKcptunServer(topo, key, SINK);
  const kc = startKcptunClient(topo, key, KCP_LOCAL);
  await kc.waitFor(/listening on/, 5000).catch(() => undefined);
  await addRouterLoss(topo, 10);
}));
after(() => topo.destroy());

async function lossCounters(): Promise<{ c2s: number; s2c: number }> {
  const d = await routerLossDrops(topo);
  return { c2s: d.fromClient, s2c: d.fromServer };
}

test('10 MB client -> server through kcptun with 10 % loss, sha256 match', { timeout: TRANSFER_TIMEOUT_MS + 20_000 }, topo.guard(async () => {
  const sent = await tcpTransfer(topo, 'client', 'send', KCP_LOCAL, BYTES, TRANSFER_TIMEOUT_MS);
  const got = await serveResult(serve, 'sink', 1, 10_000);
  const loss = await lossCounters();
  console.log(`kcptun-loss c->s: ${got.bytes} bytes in ${sent.ms} ms (${(BYTES / 1e6 / (sent.ms / 1000)).toFixed(2)} MB/s); router dropped ${loss.c2s} c2s, ${loss.s2c} s2c packets`);
  assert.ok(loss.c2s > 100, 'the loss rule hardly fired: the test did not test loss');
  assert.equal(got.bytes, BYTES);
  assert.equal(got.sha256, sent.sha256);
}));

test('10 MB server -> client through kcptun with 10 % loss, sha256 match', { timeout: TRANSFER_TIMEOUT_MS + 20_000 }, topo.guard(async () => {
  const before = await lossCounters();
  const got = await tcpTransfer(topo, 'client', 'recv', KCP_LOCAL, BYTES, TRANSFER_TIMEOUT_MS);
  const src = await serveResult(serve, 'source', 1, 10_000);
  const loss = await lossCounters();
  console.log(`kcptun-loss s->c: ${got.bytes} bytes in ${got.ms} ms (${(BYTES / 1e6 / (got.ms / 1000)).toFixed(2)} MB/s); router dropped ` +
    `${loss.c2s - before.c2s} c2s, ${loss.s2c - before.s2c} s2c packets`);
  assert.ok(loss.s2c - before.s2c > 100, 'the loss rule hardly fired: the test did not test loss');
  assert.equal(got.bytes, BYTES);
  assert.equal(got.sha256, src.sha256);
  const r = await topo.readNftCounters();
  assert.equal(r.invalid_drops.packets, 0, 'conntrack took segments after a loss for INVALID');
}));
