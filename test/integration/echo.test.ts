// UDP echo through client ns -> router (masquerade, strict conntrack, INVALID and UDP dropped) -> server ns.
// Also measures kernel chatter: segments the kernels send themselves (TcpOutSegs + TcpRetransSegs in
// the client and server namespaces; injected raw segments are not counted there) against every TCP
// segment the router forwarded. Only the tunnel uses TCP in those namespaces during this test.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';
import { sleep } from '../lib/proc';
import { mixedSize } from '../lib/payload';

const topo = new Topology();
before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  // No --dev on the client, whose namespace has no default route: it must find the device itself.
  const { client } = await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2, dev: null } });
  assert.match(client.output(), new RegExp(` via ${topo.dev.client};`), 'the client should have picked the veth towards the router');
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
  console.log(`echo: first datagram echoed ${first.ms} ms after the client was ready`);
}));
after(() => topo.destroy());

test('200 datagrams of 16..1200 bytes are echoed through the tunnel (>= 99 %, contents checked)', { timeout: 30_000 }, topo.guard(async () => {
  const r = await udpEcho(topo, { count: 200, min: 16, max: 1200, rate: 200 });
  console.log(`echo: ${r.received}/${r.sent} echoed, bad=${r.bad} dup=${r.dup}, rtt p50=${r.rttMs.p50} ms p99=${r.rttMs.p99} ms max=${r.rttMs.max} ms`);
  assert.equal(r.bad, 0, 'echoed datagrams must be byte-for-byte identical');
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
}));

test('kernel-generated TCP segments are < 1 % of the tunnel segments; 0 invalid drops', { timeout: 60_000 }, topo.guard(async () => {
  await sleep(500); // let connections that were still handshaking settle
  const c0 = await topo.nstat('client');
  const s0 = await topo.nstat('server');
  const r0 = await topo.readNftCounters();
  const BULK = { count: 10_000, min: 200, max: 1200, rate: 2000, waitMs: 5000 };
  const r = await udpEcho(topo, BULK);
  const c1 = await topo.nstat('client');
  const s1 = await topo.nstat('server');
  const r1 = await topo.readNftCounters();
  const kern = (a: Record<string, number>, b: Record<string, number>) => (b.TcpOutSegs - a.TcpOutSegs) + (b.TcpRetransSegs - a.TcpRetransSegs);
  const kernel = kern(c0, c1) + kern(s0, s1);
  const tunnel = (r1.tcp_c2s.packets - r0.tcp_c2s.packets) + (r1.tcp_s2c.packets - r0.tcp_s2c.packets);
  const ratio = kernel / Math.max(1, tunnel);
  console.log(`echo bulk: ${r.received}/${r.sent} echoed in ${r.elapsedMs} ms (rtt p50=${r.rttMs.p50} ms p99=${r.rttMs.p99} ms); ` +
    `router forwarded ${tunnel} TCP segments; kernels sent ${kernel} (client ${kern(c0, c1)}, server ${kern(s0, s1)}): ` +
    `chatter ${(ratio * 100).toFixed(3)} %; invalid drops ${r1.invalid_drops.packets}`);
  assert.equal(r.bad, 0);
  assert.ok(r.ratio >= 0.95, `bulk echo: only ${r.received}/${r.sent} echoed`);
  // The denominator must really be the tunnel's traffic: at least the UDP payload bytes crossed as TCP.
  let payload = 0;
  for (let i = 0; i < BULK.count; i++) payload += mixedSize(i, BULK.min, BULK.max);
  const tunnelBytes = (r1.tcp_c2s.bytes - r0.tcp_c2s.bytes) + (r1.tcp_s2c.bytes - r0.tcp_s2c.bytes);
  assert.ok(tunnelBytes >= payload * (1 + r.ratio) * 0.99, `router forwarded ${tunnelBytes} TCP bytes for ${payload} payload bytes each way`);
  assert.ok(ratio < 0.01, `kernel chatter ${(ratio * 100).toFixed(2)} % >= 1 %`);
  assert.equal(r1.invalid_drops.packets, 0, 'router dropped INVALID segments');
  assert.equal(r1.udp_drops.packets - r0.udp_drops.packets, 0, 'no UDP should reach the router');
}));
