// What an attacker on or off the path, and a censor watching it, get from the real client and server
// over the in-memory network: replays deliver nothing, blind resets reset nothing, a replayed greeting
// changes nothing, a probe is handed back to the kernel, and the wire carries what a kernel would send
// with no plaintext structure.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { ipToInt } from '../../src/core/ipv4';
import { ACK, PSH, RST, Segment } from '../../src/core/packet';
import type { WatcherEvent } from '../../src/io/native';
import { parseClientHello, parseServerHello } from '../../src/core/tls-shape';
import { sodiumCrypto } from '../sim/crypto';
import { SimIo } from '../sim/io';
import { UdpApp } from '../sim/network';
import { buildTcp } from '../sim/packet';
import { SERVER_IP, SimTunnel, SimTunnelOptions } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

const dgram = (i: number, size = 200, fill = -1) => {
  const b = Buffer.alloc(size, fill < 0 ? i & 0xff : fill);
  b.writeUInt32BE(i, 0);
  return b;
};

/** How many times the echo target received each datagram index. */
function deliveries(t: SimTunnel): Map<number, number> {
  const n = new Map<number, number>();
  for (const r of t.echo.received) {
    const i = r.data.readUInt32BE(0);
    n.set(i, (n.get(i) ?? 0) + 1);
  }
  return n;
}

function traffic(t: SimTunnel, app: UdpApp, from: number, count: number, size = 200, fill = -1): void {
  for (let i = from; i < from + count; i++) {
    t.send(app, dgram(i, size, fill));
    if (i % 10 === 9) t.run(1);
  }
  t.run(50);
}

const dataFrom = (t: SimTunnel, who: string) => t.net.wire!.filter((w) => w.from === who && w.seg && w.seg.wireLen > 0);

for (const mode of [{ obfs: 'none', aead: false }, { obfs: 'none', aead: true }, { obfs: 'tls', aead: false }, { obfs: 'tls', aead: true }] as const) {
  const opts: SimTunnelOptions = { ports: [10001], mode };
  const name = `obfs=${mode.obfs} crypt=${mode.aead ? 'aead' : 'none'}`;

  test(`${name}: recorded segments replayed into the server deliver nothing twice and do not move the ack`, async () => {
    const t = new SimTunnel(crypto, opts).up();
    const app = t.app();
    t.net.wire = [];
    traffic(t, app, 0, 200);
    const recorded = dataFrom(t, 'client').map((w) => w.pkt);
    assert.ok(recorded.length >= 200);
    t.net.wire = [];
    for (const pkt of recorded) t.net.transmit(t.clientHost, pkt);
    t.run(100);
    const twice = [...deliveries(t).values()].filter((n) => n > 1).length;
    assert.equal(twice, 0, `${twice} datagrams delivered twice`);
    assert.equal(deliveries(t).size, 200);
    assert.ok(t.server.stats().rxReplayed >= recorded.length - 5, `replayed ${t.server.stats().rxReplayed} of ${recorded.length}`);
    assert.equal(dataFrom(t, 'server').length, 0, 'the replay drew no answer');
    // The server's next segment acks the client's real bytes only.
    traffic(t, app, 1000, 1);
    const c = dataFrom(t, 'client').at(-1)!.seg!;
    const s = dataFrom(t, 'server').at(-1)!.seg!;
    assert.equal(s.ack, (c.seq + c.wireLen) >>> 0);
    await t.stop();
  });

  test(`${name}: the first bytes of every segment look random even when the datagrams are all zeros`, async () => {
    const t = new SimTunnel(crypto, opts).up();
    const app = t.app();
    t.net.wire = [];
    traffic(t, app, 0, 400, 300, 0);
    const segs = [...dataFrom(t, 'client'), ...dataFrom(t, 'server')].map((w) => w.pkt.subarray(w.pkt.length - w.seg!.wireLen));
    // After the TLS record header (when there is one), which is all a TLS record shows in plain.
    const skip = mode.obfs === 'tls' ? 5 : 0;
    if (skip) assert.ok(segs.every((p) => p[0] === 0x17 && p[1] === 3 && p[2] === 3 && p.readUInt16BE(3) === p.length - 5), 'one application-data record per segment');
    for (let off = skip; off < skip + 64; off++) {
      const counts = new Map<number, number>();
      for (const p of segs) counts.set(p[off], (counts.get(p[off]) ?? 0) + 1);
      const top = Math.max(...counts.values());
      assert.ok(top <= segs.length * 0.1, `offset ${off}: one value in ${top} of ${segs.length} segments`);
    }
    if (mode.aead) {
      // Encrypted: the zeros of the datagrams are nowhere on the wire.
      const zeros = segs.filter((p) => p.subarray(105, 200).equals(Buffer.alloc(95))).length;
      assert.equal(zeros, 0);
    }
    await t.stop();
  });
}

test('timestamps on every segment continue the kernel clock, TSecr echoes the peer, IP ids count up', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] });
  t.net.wire = [];
  t.up();
  const app = t.app();
  traffic(t, app, 0, 100);
  t.run(2500);
  const segs = t.net.wire!.filter((w) => w.seg && !(w.seg.flags & RST)).map((w) => ({ from: w.from, seg: w.seg as Segment }));
  assert.ok(segs.length > 200);
  const sent = { client: new Set<number>(), server: new Set<number>() };
  const last = { client: -1, server: -1 };
  const ids = { client: [] as number[], server: [] as number[] };
  for (const { from, seg } of segs) {
    const who = from as 'client' | 'server';
    assert.ok(seg.hasTs, `a ${who} segment without timestamps`);
    if (last[who] >= 0) assert.ok(((seg.tsVal - last[who]) | 0) >= 0, 'TSval went backwards');
    last[who] = seg.tsVal;
    sent[who].add(seg.tsVal);
    const peer = who === 'client' ? 'server' : 'client';
    if (seg.tsEcr !== 0) assert.ok(sent[peer].has(seg.tsEcr), `TSecr ${seg.tsEcr} is no TSval the ${peer} sent`);
    assert.equal(seg.ttl, 64);
    ids[who].push(seg.ipId);
  }
  for (const who of ['client', 'server'] as const) {
    const steps = ids[who].slice(1).map((id, i) => (id - ids[who][i]) & 0xffff);
    assert.ok(steps.every((d) => d === 1), `${who} IP ids do not count up by one: ${steps.slice(0, 10)}`);
  }
  await t.stop();
});

test('20,000 blind RSTs and FINs with random seq at the live 4-tuples reset nothing; challenge ACKs are rate-limited', async () => {
  const t = new SimTunnel(crypto, { ports: [10001, 10002] }).up();
  const app = t.app();
  t.net.wire = [];
  traffic(t, app, 0, 20);
  const tuples = [...dataFrom(t, 'client'), ...dataFrom(t, 'server')].map((w) => w.seg!);
  t.net.wire = [];
  let acks = 0;
  for (let i = 0; i < 20000; i++) {
    const s = tuples[i % tuples.length];
    const flags = i % 3 === 0 ? ACK | 0x01 : RST;
    t.net.transmit(i % 2 ? t.clientHost : t.serverHost, buildTcp({ ...s, seq: (Math.random() * 2 ** 32) >>> 0, ack: s.ack, flags, window: 0 }));
    if (i % 100 === 99) t.run(5);
  }
  t.run(100);
  assert.equal(t.client.liveConnections, 2);
  // The forgeries are RST or FIN|ACK; a pure ACK is a challenge ACK (or the ACK cadence's).
  acks = t.net.wire.filter((w) => w.seg && w.seg.wireLen === 0 && w.seg.flags === ACK).length;
  assert.ok(acks <= 2 * 2 * Math.ceil(t.net.time.now / 500), `${acks} pure ACKs went out`);
  traffic(t, app, 100, 20);
  assert.equal(deliveries(t).size, 40, 'the tunnel carries on');
  await t.stop();
});

/** A host that opens a TCP connection to a server port and sends what it is told, with the right seq. */
function stranger(t: SimTunnel, ip: string) {
  const host = t.net.host(`stranger-${ip}`, ipToInt(ip));
  const io = new SimIo(host, crypto);
  let conn: (WatcherEvent & { type: 'connected' }) | null = null;
  io.openSockets((ev) => {
    if (ev.type === 'connected') conn = ev;
  }).connect('', SERVER_IP, 10001);
  t.run(20);
  assert.ok(conn, 'the stranger connected');
  const c = conn as WatcherEvent & { type: 'connected' };
  let seq = c.sndNxt;
  return {
    host,
    send(payload: Buffer) {
      host.net.transmit(host, buildTcp({ srcIp: c.localIp, dstIp: c.remoteIp, srcPort: c.localPort, dstPort: 10001, seq, ack: c.rcvNxt, flags: ACK | PSH, window: 502 }, payload));
      seq = (seq + payload.length) >>> 0;
    },
  };
}

test('a greeting and Join recorded on one connection and replayed on a new one create nothing and retire nothing', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] });
  t.net.wire = [];
  t.up();
  const recorded = dataFrom(t, 'client').map((w) => w.pkt.subarray(w.pkt.length - w.seg!.wireLen));
  const app = t.app();
  traffic(t, app, 0, 10);
  const s = stranger(t, '10.9.0.66');
  t.net.wire = [];
  const toStranger = () => dataFrom(t, 'server').filter((w) => w.seg!.dstIp === ipToInt('10.9.0.66')).length;
  s.send(recorded[0]);
  t.run(50);
  const flight = toStranger();
  assert.ok(flight >= 1, 'a replayed greeting gets a fresh answer, as a TLS server would give');
  for (const p of recorded.slice(1, 4)) {
    s.send(p);
    t.run(20);
  }
  t.run(200);
  assert.equal(toStranger(), flight, 'nothing answers the replayed Join and frames');
  assert.equal(t.server.sessionCount, 1);
  assert.equal(t.client.liveConnections, 1);
  traffic(t, app, 100, 10);
  assert.equal(deliveries(t).size, 20, 'the real connection was not retired');
  await t.stop();
});

test('a probe that sends HTTP is handed back to the kernel and gets nothing from the tunnel', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  const app = t.app();
  const s = stranger(t, '10.9.0.77');
  t.net.wire = [];
  s.send(Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'));
  t.run(50);
  assert.equal(t.serverIo.probes.length, 1, 'handed to serveProbe');
  assert.equal(t.server.stats().connections, 1, 'the tunnel forgot the probe');
  assert.equal(t.net.wire.filter((w) => w.from === 'server').length, 0, 'the tunnel sent the probe nothing');
  s.send(Buffer.from('more'));
  t.run(50);
  assert.equal(t.net.stats.servedByKernel, 1, "the kernel's socket gets the prober's next segment");
  traffic(t, app, 0, 10);
  assert.equal(deliveries(t).size, 10);
  await t.stop();
});

test('client and server with different --crypt do not connect, and the server takes the client for a probe', async () => {
  const t = new SimTunnel(crypto, { ports: [10001], mode: { obfs: 'none', aead: true } });
  t.startServer();
  t.startClient({ mode: { obfs: 'none', aead: false } });
  t.run(3000);
  assert.equal(t.client.liveConnections, 0);
  assert.ok(t.server.stats().probes >= 1);
  await t.stop();
});

test('obfs=tls: a connection opens with a ClientHello naming the SNI, a ServerHello and ChangeCipherSpec, then records only', async () => {
  const t = new SimTunnel(crypto, { ports: [10001], mode: { obfs: 'tls', aead: false } });
  t.net.wire = [];
  t.up();
  assert.ok(t.net.time.now < 100, `up after ${t.net.time.now} ms: the first Join was taken, not a resend`);
  traffic(t, t.app(), 0, 5);
  const payload = (w: { pkt: Buffer; seg: Segment | null }) => w.pkt.subarray(w.pkt.length - w.seg!.wireLen);
  const [ch, ccsJoin, ...rest] = dataFrom(t, 'client').map(payload);
  const ch0 = parseClientHello(ch, 0, ch.length);
  assert.ok(ch0, 'the first client payload is a ClientHello');
  assert.equal(ch0.sni, 'sim.example');
  assert.equal(ch0.recordLen, ch.length);
  assert.deepEqual([...ccsJoin.subarray(0, 6)], [0x14, 3, 3, 0, 1, 1], 'ChangeCipherSpec before the first record');
  const [sh, ...flight] = dataFrom(t, 'server').map(payload);
  const sh0 = parseServerHello(sh, 0, sh.length);
  assert.ok(sh0, 'the first server payload is a ServerHello');
  assert.ok(sh0.sessionIdEcho.equals(ch0.sessionId), 'the session id is echoed');
  const flightBytes = sh.length + flight.slice(0, 2).reduce((n, p) => n + p.length, 0);
  assert.ok(flightBytes >= 1800, `the server's first flight is ${flightBytes} bytes, like certificates`);
  for (const p of [ccsJoin.subarray(6), ...rest, ...flight]) assert.equal(p[0], 0x17, 'application data');
  assert.equal(t.server.stats().rxMalformed + t.client.stats().rxMalformed, 0, 'the ChangeCipherSpec before Join is not taken for a bad record');
  await t.stop();
});

test('obfs=tls server, obfs=none client: the server names the likely cause, the client never connects', async () => {
  const t = new SimTunnel(crypto, { ports: [10001], mode: { obfs: 'tls', aead: false } });
  const lines: string[] = [];
  t.log.setLevel('warn');
  t.log.sink = (line) => lines.push(line);
  t.startServer();
  t.startClient({ mode: { obfs: 'none', aead: false } });
  t.run(3000);
  assert.equal(t.client.liveConnections, 0);
  assert.ok(lines.some((l) => /probe .*--obfs=none greeting, while this end runs --obfs=tls/.test(l)), lines.join('\n'));
  await t.stop();
});
