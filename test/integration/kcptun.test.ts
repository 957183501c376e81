// kcptun over the tunnel: a 50 MiB TCP transfer each way, sha256 checked at both ends:
//   tcp-pipe (client ns) -> kcptun-client -> rsock-client -> router -> rsock-server -> kcptun-server
//   -> tcp-pipe serve (server ns)
// Then: zero INVALID drops on the router over the transfers, and the tunnel's own kernel sockets
// sent < 1 % of the tunnel's segments (ss segs_out: loopback TCP of kcptun is excluded this way).
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc } from '../lib/proc';
import { startTunnel, testKey, tunnelSocketSegsOut } from '../lib/rsock';
import { serveResult, startKcptunClient, startKcptunServer, startTcpServe, tcpTransfer } from '../lib/traffic';

const MIB = 1 << 20;
const BYTES = 50 * MIB;
const TRANSFER_TIMEOUT_MS = 150_000;
const SINK = '127.0.0.1:7100';
const KCP_LOCAL = '127.0.0.1:7200';

const topo = new Topology();
let serve: Proc;
let segs0: { client: number; server: number; sockets: number };
let fwd0: number;

before(topo.guard(async () => {
  await topo.up();
  serve = await startTcpServe(topo, 'server', SINK);
  await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2 } });
  const key = testKey(topo);
  startKcptunServer(topo, key, SINK);
  const kc = startKcptunClient(topo, key, KCP_LOCAL);
  await kc.waitFor(/listening on/, 5000).catch(() => undefined);
  const r = await topo.readNftCounters();
  fwd0 = r.tcp_c2s.packets + r.tcp_s2c.packets;
  segs0 = await tunnelSocketSegsOut(topo);
}));
after(() => topo.destroy());

test(`${BYTES / MIB} MiB client -> server through kcptun, sha256 match`, { timeout: TRANSFER_TIMEOUT_MS + 20_000 }, topo.guard(async () => {
  const sent = await tcpTransfer(topo, 'client', 'send', KCP_LOCAL, BYTES, TRANSFER_TIMEOUT_MS);
  const got = await serveResult(serve, 'sink', 1, 10_000);
  console.log(`kcptun c->s: ${got.bytes} bytes, ${(BYTES / MIB / (sent.ms / 1000)).toFixed(2)} MiB/s end to end (${sent.ms} ms), sink ${got.ms} ms`);
  assert.equal(got.bytes, BYTES);
  assert.equal(got.sha256, sent.sha256);
}));

test(`${BYTES / MIB} MiB server -> client through kcptun, sha256 match`, { timeout: TRANSFER_TIMEOUT_MS + 20_000 }, topo.guard(async () => {
  const got = await tcpTransfer(topo, 'client', 'recv', KCP_LOCAL, BYTES, TRANSFER_TIMEOUT_MS);
  const src = await serveResult(serve, 'source', 1, 10_000);
  console.log(`kcptun s->c: ${got.bytes} bytes, ${(BYTES / MIB / (got.ms / 1000)).toFixed(2)} MiB/s end to end (${got.ms} ms)`);
  assert.equal(got.bytes, BYTES);
  assert.equal(got.sha256, src.sha256);
}));

test('no INVALID drops on the router and < 1 % kernel segments over the transfers', { timeout: 20_000 }, topo.guard(async () => {
  const r = await topo.readNftCounters();
  const segs1 = await tunnelSocketSegsOut(topo);
  const fwd = r.tcp_c2s.packets + r.tcp_s2c.packets - fwd0;
  const kernel = segs1.client - segs0.client + segs1.server - segs0.server;
  console.log(`kcptun: router forwarded ${fwd} TCP segments (c2s ${r.tcp_c2s.packets}, s2c ${r.tcp_s2c.packets}), invalid drops ${r.invalid_drops.packets}; ` +
    `tunnel kernel sockets (${segs1.sockets}) sent ${kernel} segments = ${((kernel / Math.max(1, fwd)) * 100).toFixed(3)} %`);
  assert.equal(r.invalid_drops.packets, 0, `router dropped ${r.invalid_drops.packets} INVALID segments`);
  assert.ok(fwd > (2 * BYTES) / 1500, `router forwarded only ${fwd} TCP segments for 2 x ${BYTES} bytes`);
  assert.ok(kernel / Math.max(1, fwd) < 0.01, `kernel sockets sent ${kernel} segments for ${fwd} tunnel segments`);
}));
