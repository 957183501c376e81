// The real RsockClient and RsockServer over the in-memory network (test/sim): no root, no addon, an
// injected clock. Minutes of tunnel life run in milliseconds.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { FrameType, frameOverhead, writeHeader } from '../../src/core/frame';
import { ipToInt } from '../../src/core/ipv4';
import type { Crypto } from '../../src/core/crypto';
import { ACK, PSH, RST } from '../../src/core/packet';
import { sodiumCrypto } from '../sim/crypto';
import { UdpApp } from '../sim/network';
import { buildTcp } from '../sim/packet';
import { SERVER_IP, SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});
/** Frame overhead in the sim's default mode (--obfs=tls, no aead). */
const HEADER = frameOverhead({ obfs: 'tls', aead: false });

const dgram = (flow: number, i: number, size = 100) => {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(flow, 0);
  b.writeUInt32BE(i, 4);
  return b;
};

/** The datagrams an app got back, as "flow/index" strings, checked byte for byte against what was sent. */
function echoed(app: UdpApp, size = 100): Set<string> {
  const got = new Set<string>();
  for (const r of app.received) {
    const flow = r.data.readUInt32BE(0);
    const i = r.data.readUInt32BE(4);
    assert.ok(r.data.equals(dgram(flow, i, size)), `datagram ${flow}/${i} came back changed`);
    got.add(`${flow}/${i}`);
  }
  return got;
}

test('datagrams go both ways over every port, one flow per app, each flow intact', async () => {
  const t = new SimTunnel(crypto).up();
  t.net.wire = [];
  const apps = [t.app(), t.app(), t.app(), t.app()];
  for (let i = 0; i < 300; i++) {
    apps.forEach((a, f) => t.send(a, dgram(f, i)));
    if (i % 10 === 9) t.run(1);
  }
  t.run(100);
  apps.forEach((a, f) => {
    const got = echoed(a);
    assert.equal(got.size, 300, `flow ${f}: ${got.size}/300 echoed`);
    assert.ok([...got].every((k) => k.startsWith(`${f}/`)), `flow ${f} got another flow's datagrams`);
  });
  assert.equal(t.server.stats().flows, 4);
  const dataPorts = new Map<number, number>();
  for (const w of t.net.wire) {
    if (w.from === 'client' && w.seg && w.seg.wireLen > 0) dataPorts.set(w.seg.dstPort, (dataPorts.get(w.seg.dstPort) ?? 0) + 1);
  }
  assert.deepEqual([...dataPorts.keys()].sort(), [10001, 10002, 10003]);
  for (const n of dataPorts.values()) assert.ok(n >= 350, `port use is uneven: ${[...dataPorts.values()]}`);
  assert.equal(t.net.stats.kernelRsts, 0, 'no kernel answered an injected segment');
  await t.stop();
});

test('flows survive a reset of their connection: the client redials and the flow carries on', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  const app = t.app();
  t.send(app, dgram(0, 0));
  t.run(50);
  assert.equal(echoed(app).size, 1);
  // A router resets everything from the client on port 10001 for one second.
  const rule = t.net.rejectWithReset((s) => s.dstPort === 10001 && s.srcIp !== ipToInt(SERVER_IP));
  t.net.rules.push(rule);
  t.send(app, dgram(0, 1));
  t.run(20);
  assert.equal(t.client.liveConnections, 0, 'the reset took the connection down');
  t.run(1000);
  t.net.rules.splice(t.net.rules.indexOf(rule), 1);
  const took = t.net.time.runUntil(() => t.client.liveConnections === 1, 15000);
  assert.ok(took >= 0, 'the client reconnected after the reset ended');
  for (let i = 2; i < 12; i++) t.send(app, dgram(0, i));
  t.run(50);
  const got = echoed(app);
  for (let i = 2; i < 12; i++) assert.ok(got.has(`0/${i}`), `datagram ${i} after the reconnect`);
  assert.equal(t.server.stats().flowsOpened, 1, 'the server kept the same flow across the reconnect');
  assert.equal(t.server.sessionCount, 1);
  await t.stop();
});

test('idle flows expire on both sides after --duration, and one-way traffic keeps them', async () => {
  const t = new SimTunnel(crypto, { durationMs: 3000 }).up();
  const quiet = t.app();
  const busy = t.app();
  t.send(quiet, dgram(0, 0));
  t.run(20);
  assert.equal(t.client.flowCount, 1);
  assert.equal(t.server.stats().flows, 1);
  t.echo.echo = false; // from now on only the client sends: one-way traffic
  for (let ms = 0; ms < 5000; ms += 500) {
    t.send(busy, dgram(1, ms));
    t.run(500);
  }
  assert.equal(t.client.flowCount, 1, 'the quiet flow expired on the client, the busy one did not');
  assert.equal(t.server.stats().flows, 1, 'the same on the server');
  assert.equal(t.server.stats().flowsExpired, 1);
  const udpSockets = () => t.serverHost.udp.size;
  const before = udpSockets();
  t.run(3500);
  assert.equal(t.client.flowCount, 0);
  assert.equal(t.server.stats().flows, 0);
  assert.equal(udpSockets(), before - 1, "the busy flow's socket towards the target was closed");
  await t.stop();
});

test('forged, truncated and stray segments are dropped: no datagram, no state, no reply, ack unmoved', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  const app = t.app();
  t.send(app, dgram(0, 0));
  t.run(50);
  const stats0 = t.server.stats();
  // The live connection's 4-tuple, from the server's first data segment on the wire.
  t.net.wire = [];
  t.send(app, dgram(0, 1));
  t.run(50);
  const c2s = t.net.wire.find((w) => w.from === 'client' && w.seg && w.seg.wireLen > 0)!.seg!;
  const s2c = t.net.wire.find((w) => w.from === 'server' && w.seg && w.seg.wireLen > 0)!.seg!;
  const forge = (payload: Buffer, seq = s2c.ack) =>
    t.clientHost.net.transmit(t.clientHost, buildTcp({ ...c2s, seq, ack: c2s.ack, flags: ACK | PSH, window: 65535 }, payload));
  const frame = Buffer.alloc(HEADER + 20, 7);
  writeHeader(frame, 0, FrameType.Data, 99, 20); // a frame with an unmasked header and a wrong tag
  const hello = Buffer.alloc(HEADER + 7);
  writeHeader(hello, 0, FrameType.Join, 0x1234, 7);
  t.net.wire = [];
  for (let i = 0; i < 50; i++) forge(frame);
  forge(hello);
  forge(frame.subarray(0, HEADER + 5)); // length says 20, 5 present
  forge(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.run(100);
  const s = t.server.stats();
  // Unmasked with the connection's keystream, a forged header gives a random length: most such
  // segments do not even split into frames; none of them gets a frame through.
  const rejected = s.rxForged - stats0.rxForged + s.rxMalformed - stats0.rxMalformed;
  assert.ok(rejected >= 53, `forged ${s.rxForged - stats0.rxForged} + malformed ${s.rxMalformed - stats0.rxMalformed} of 53`);
  assert.equal(s.toTarget - stats0.toTarget, 1, 'only the real datagram reached the target');
  assert.equal(s.sessions, 1);
  assert.equal(s.flows, 1);
  const replies = t.net.wire.filter((w) => w.from === 'server');
  assert.equal(replies.length, 0, 'no segment answered the forgeries');
  // The server's next segment still acks only what the real client sent.
  t.net.wire = [];
  t.send(app, dgram(0, 2));
  t.run(50);
  const next = t.net.wire.find((w) => w.from === 'server' && w.seg && w.seg.wireLen > 0)!.seg!;
  const realBytes = t.net.wire.filter((w) => w.from === 'client' && w.seg && w.seg.wireLen > 0).reduce((n, w) => n + w.seg!.wireLen, 0);
  assert.equal((next.ack - c2s.seq - c2s.wireLen) >>> 0, realBytes, 'forged bytes did not move the ack');
  await t.stop();
});

test('a stranger that completes a handshake but never greets is closed after 10 s', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  const stranger = t.net.host('stranger', ipToInt('10.9.0.66'));
  const { SimIo } = await import('../sim/io');
  const io = new SimIo(stranger, crypto);
  const events: string[] = [];
  io.openSockets((ev) => events.push(ev.type)).connect('', SERVER_IP, 10001);
  t.run(20);
  assert.deepEqual(events, ['connected']);
  const links = () => t.server.stats().connections;
  assert.equal(links(), 2);
  t.run(9900);
  assert.equal(links(), 2, 'kept while its greeting may still come');
  t.run(200);
  assert.equal(links(), 1, 'closed at the deadline');
  assert.equal(t.server.sessionCount, 1);
  io.kill();
  await t.stop();
});

// The kill lands anywhere in the keepalive cycle (2 s); the restarted server's kernel has no socket for
// the old 4-tuples, and the client's quiet probe (a pure ACK) draws its RST within about a second.
for (const phaseMs of [0, 700, 1400]) {
  test(`a server restart is recovered within 3 s (killed ${phaseMs} ms into the keepalive cycle): the client redials and the flow carries on`, async () => {
    const t = new SimTunnel(crypto, { ports: [10001, 10002] }).up();
    const app = t.app();
    t.send(app, dgram(0, 0));
    t.run(50 + phaseMs);
    t.serverIo.kill(); // SIGKILL: nothing said on the wire
    t.run(300);
    t.startServer();
    const took = t.net.time.runUntil(() => {
      t.send(app, dgram(0, 1000 + t.net.time.now));
      return app.received.some((r) => r.data.readUInt32BE(4) >= 1000);
    }, 20000, 50);
    console.log(`server restart at phase ${phaseMs} ms: datagrams echoed again ${took} ms after the new server started`);
    assert.ok(took >= 0, 'datagrams flow again after the restart');
    assert.ok(took < 3000, `recovered in ${took} ms`);
    assert.ok(t.net.stats.kernelRsts > 0, "the restarted server's kernel reset the old connections");
    t.run(3000);
    assert.equal(t.client.liveConnections, 2);
    await t.stop();
  });
}

test('GRO-merged segments are split back into every datagram', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  t.net.gro = true;
  const app = t.app();
  for (let i = 0; i < 200; i++) t.send(app, dgram(0, i, 300));
  t.run(100);
  assert.ok(t.net.stats.merged >= 100, `merged ${t.net.stats.merged} segments`);
  assert.equal(echoed(app, 300).size, 200);
  assert.equal(t.server.stats().rxForged + t.client.stats().rxForged, 0);
  await t.stop();
});

test('a segment cut by the capture keeps its whole frames and the connection stays in step', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  t.net.gro = true;
  t.net.snaplen = 40 + 2 * (HEADER + 300) + 50; // two whole frames and part of a third
  const app = t.app();
  for (let i = 0; i < 4; i++) t.send(app, dgram(0, i, 300));
  t.run(100);
  assert.ok(t.server.stats().rxTruncated >= 1);
  const got = echoed(app, 300);
  assert.ok(got.has('0/0') && got.has('0/1'), `echoed ${[...got]}`);
  t.net.gro = false;
  t.net.snaplen = 65535;
  for (let i = 10; i < 20; i++) t.send(app, dgram(0, i, 300));
  t.run(100);
  assert.equal([...echoed(app, 300)].filter((k) => Number(k.split('/')[1]) >= 10).length, 10, 'later datagrams all arrive');
  assert.equal(t.client.liveConnections, 1);
  await t.stop();
});

test('a blind RST far from the window is ignored; one at the expected seq resets', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  const app = t.app();
  t.net.wire = [];
  t.send(app, dgram(0, 0));
  t.run(50);
  const s2c = t.net.wire.find((w) => w.from === 'server' && w.seg && w.seg.wireLen > 0)!.seg!;
  const rst = (seq: number) => t.net.transmit(t.serverHost, buildTcp({ ...s2c, seq, ack: 0, flags: RST, window: 0 }));
  rst((s2c.seq + 0x40000000) >>> 0);
  t.run(20);
  assert.equal(t.client.liveConnections, 1);
  rst((s2c.seq + s2c.wireLen) >>> 0);
  t.run(20);
  assert.equal(t.client.liveConnections, 0);
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === 1, 5000) >= 0, 'redialed');
  await t.stop();
});

test('shutdown tells the other side: the server forgets the session at once', async () => {
  const t = new SimTunnel(crypto).up();
  const app = t.app();
  t.send(app, dgram(0, 0));
  t.run(50);
  assert.equal(t.server.sessionCount, 1);
  await t.client.stop();
  t.run(50);
  assert.equal(t.server.sessionCount, 0);
  assert.equal(t.server.stats().connections, 0);
  assert.equal(t.server.stats().flows, 0);
  await t.server.stop();
});

test('a client restart is a new session: it works at once, and the old one is forgotten after --duration', async () => {
  const t = new SimTunnel(crypto, { ports: [10001], durationMs: 3000 }).up();
  const app = t.app();
  t.send(app, dgram(0, 0));
  t.run(50);
  t.clientIo.kill(); // SIGKILL: the server is not told
  t.startClient();
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === 1, 5000) >= 0, 'the new client came up');
  t.send(app, dgram(0, 1));
  t.run(50);
  assert.ok(echoed(app).has('0/1'), 'the new session carries datagrams');
  assert.equal(t.server.sessionCount, 2, 'the old session waits out its dead link and idle flow');
  // Its link is dead 3 x keepalive + 0.5 s after the client's last frame; the empty session goes
  // --duration after that.
  t.run(7000);
  assert.equal(t.server.sessionCount, 2);
  assert.equal(t.server.stats().connections, 1, 'the dead link is gone');
  t.run(4000);
  assert.equal(t.server.sessionCount, 1);
  assert.equal(t.server.stats().connections, 1);
  await t.stop();
});
