// The real client and server over IPv6 on the simulated network: the client dials the server's IPv6
// address, apps use [::1] at both ends, and every segment on the wire is IPv6. Also: a segment must
// come from its connection's peer in both the address and the IP version, not just match a key.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { ACK, RST, Segment } from '../../src/core/packet';
import { simIp } from '../sim/addr';
import { sodiumCrypto } from '../sim/crypto';
import { UdpApp } from '../sim/network';
import { buildTcp } from '../sim/packet';
import { CLIENT_IP, CLIENT_IP6, SERVER_IP, SERVER_IP6, SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

const dgram = (flow: number, i: number, size: number) => {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(flow, 0);
  b.writeUInt32BE(i, 4);
  return b;
};

function echoedCount(app: UdpApp, size: number): number {
  let n = 0;
  for (const r of app.received) {
    assert.ok(r.data.equals(dgram(r.data.readUInt32BE(0), r.data.readUInt32BE(4), size)), 'a datagram came back changed');
    n++;
  }
  return n;
}

test('IPv6: datagrams both ways from apps on [::1], every segment IPv6 between the hosts\' IPv6 addresses', async () => {
  const t = new SimTunnel(crypto, { ipv6: true });
  t.net.wire = [];
  t.up();
  const apps = [t.app(), t.app()];
  for (let i = 0; i < 200; i++) {
    apps.forEach((a, f) => t.send(a, dgram(f, i, 100 + (i % 7) * 150)));
    if (i % 10 === 9) t.run(1);
  }
  t.run(100);
  apps.forEach((a) => {
    assert.equal(a.received.length, 200);
    assert.ok(a.received.every((r) => r.ip === simIp('::1')), 'the replies come from [::1]:30000');
  });
  assert.equal(t.server.stats().flows, 2);
  const segs = t.net.wire.map((w) => w.seg).filter((s): s is Segment => s !== null);
  assert.ok(segs.length > 400);
  const c6 = simIp(CLIENT_IP6);
  const s6 = simIp(SERVER_IP6);
  for (const s of segs) {
    assert.equal(s.ipVersion, 6);
    assert.ok((s.srcIp === c6 && s.dstIp === s6) || (s.srcIp === s6 && s.dstIp === c6));
    assert.equal(s.ttl, 64, 'the hop limit the kernel socket reported');
  }
  // Each connection's end keeps one flow label of its own, never 0, as Linux's auto flow labels do.
  const labels = new Map<string, Set<number>>();
  for (const w of t.net.wire) {
    const s = w.seg!;
    const end = `${w.from}:${w.from === 'client' ? s.srcPort : s.dstPort}`;
    if (!labels.has(end)) labels.set(end, new Set());
    labels.get(end)!.add(s.flowLabel);
  }
  assert.equal(labels.size, 6, 'three connections, two ends each');
  const all = [...labels.values()].map((l) => [...l]);
  assert.ok(all.every((l) => l.length === 1 && l[0] !== 0), `labels per end: ${JSON.stringify(all)}`);
  assert.equal(new Set(all.map((l) => l[0])).size, 6, 'every end has a label of its own');
  assert.equal(t.net.stats.kernelRsts, 0);
  await t.stop();
});

test('IPv6: a datagram as large as the MSS allows is carried in one segment, a larger one in fragments', async () => {
  const t = new SimTunnel(crypto, { ipv6: true, ports: [10001] });
  t.net.wire = [];
  t.up();
  const app = t.app();
  // The sim's kernels give IPv6 connections an MSS 20 bytes smaller than IPv4 ones, as Linux does.
  for (let i = 0; i < 20; i++) t.send(app, dgram(0, i, 3000));
  t.run(200);
  assert.equal(echoedCount(app, 3000), 20);
  const biggest = Math.max(...t.net.wire.map((w) => w.seg?.wireLen ?? 0));
  assert.ok(biggest <= t.net.mss - 20, `a segment carried ${biggest} bytes, more than the IPv6 MSS ${t.net.mss - 20}`);
  await t.stop();
});

test('a segment from the right key but the wrong IP version is ignored: an IPv4-mapped IPv6 RST does not reset', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] });
  t.net.wire = [];
  t.up();
  const last = [...t.net.wire].reverse().find((w) => w.from === 'client' && w.seg && w.seg.dstPort === 10001)!.seg!;
  const rst = buildTcp({ srcIp: last.srcIp, dstIp: last.dstIp, srcPort: last.srcPort, dstPort: last.dstPort, seq: (last.seq + last.wireLen) >>> 0, ack: 0, flags: RST | ACK, window: 0 });
  assert.equal(t.server.stats().connections, 1);
  // The same RST as IPv6 from ::ffff:10.9.0.1 to ::ffff:10.9.0.2, whose keys are those of the IPv4 addresses.
  const mapped = (ip: string) => Buffer.from(new Uint32Array([0, 0, 0xffff, simIp(ip)].map((w) => ((w >>> 24) | ((w >>> 8) & 0xff00) | ((w << 8) & 0xff0000) | (w << 24)) >>> 0)).buffer);
  const tcp = rst.subarray(20);
  const v6 = Buffer.concat([Buffer.from([0x60, 0, 0, 0, 0, tcp.length, 6, 64]), mapped(CLIENT_IP), mapped(SERVER_IP), tcp]);
  t.clientHost.net.transmit(t.clientHost, v6);
  t.run(20);
  assert.equal(t.server.stats().connections, 1, 'the IPv6 RST reset the IPv4 connection');
  assert.ok(t.server.stats().rxUnknown >= 1, 'it counts as a segment of no connection');
  // The control: the same RST as IPv4 does end the connection, so the one above was judged, not lost.
  t.clientHost.net.transmit(t.clientHost, rst);
  t.run(5);
  assert.equal(t.server.stats().connections, 0);
  await t.stop();
});
