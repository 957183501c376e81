// --type=udp and --type=all over the in-memory network: the real client and server, UDP between the
// hosts that the test can drop (net.udpRules), the virtual clock for fallback and return times.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { ipToInt } from '../../src/core/ipv4';
import { sodiumCrypto } from '../sim/crypto';
import { UdpApp } from '../sim/network';
import { SERVER_IP, SimTunnel, SimTunnelOptions } from '../sim/tunnel';
import { udpOverhead } from '../../src/core/udp-wire';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

const PORTS = [10001, 10002, 10003];

function tunnel(o: SimTunnelOptions): SimTunnel {
  const t = new SimTunnel(crypto, { ports: PORTS, ...o });
  t.startServer();
  t.startClient();
  return t;
}

/** UDP from the client to the server's ports is dropped while `blocked.on`, as a router would. */
function udpBlocker(t: SimTunnel): { on: boolean } {
  const blocked = { on: false };
  t.net.udpRules.push((_s, _sp, dst, dport) => (blocked.on && dst === ipToInt(SERVER_IP) >>> 0 && PORTS.includes(dport) ? 'drop' : 'pass'));
  return blocked;
}

const dgram = (i: number, size = 100) => {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
};

/** Sends n datagrams from `app`, numbered from `from`, 1 ms apart; returns how many came back intact. */
function pingPong(t: SimTunnel, app: UdpApp, from: number, n: number, size = 100): number {
  const before = app.received.length;
  for (let i = from; i < from + n; i++) {
    t.send(app, dgram(i, size));
    t.run(1);
  }
  t.run(50);
  const got = app.received.slice(before).filter((r) => r.data.equals(dgram(r.data.readUInt32BE(0), size)));
  return new Set(got.map((r) => r.data.readUInt32BE(0))).size;
}

const stat = (s: Record<string, number>, k: string) => s[k] ?? 0;

test('--type=udp: everything goes in UDP datagrams, not one TCP packet on the wire', async () => {
  const t = tunnel({ transport: 'udp' });
  assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths === PORTS.length, 2000) >= 0, 'udp paths did not come up');
  const app = t.app();
  assert.equal(pingPong(t, app, 0, 300), 300);
  assert.equal(t.net.stats.packets, 0, 'TCP packets were sent');
  assert.equal(t.net.stats.dials, 0, 'the client dialed fake TCP');
  assert.ok(t.net.stats.udpBetweenHosts >= 600, `only ${t.net.stats.udpBetweenHosts} UDP datagrams between the hosts`);
  const s = t.server.stats();
  assert.ok(stat(s, 'udpPathFrames') >= 300);
  assert.equal(s.flows, 1);
  assert.equal(stat(s, 'udpPathForged') + stat(s, 'udpPathMalformed') + stat(s, 'udpPathReplayed'), 0);
  await t.stop();
});

test('--type=udp carries datagrams bigger than one UDP datagram as fragments, under every mode', async () => {
  for (const mode of [{ obfs: 'tls', aead: false }, { obfs: 'none', aead: true }] as const) {
    const t = tunnel({ transport: 'udp', mode });
    assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths === PORTS.length, 2000) >= 0);
    const app = t.app();
    assert.equal(pingPong(t, app, 0, 20, 9000), 20, `${mode.obfs}/${mode.aead}`);
    assert.equal(pingPong(t, app, 100, 20, 4), 20, 'four-byte datagrams');
    assert.ok(stat(t.server.stats(), 'udpPathReassembled') >= 20, 'the server did not reassemble UDP fragments');
    assert.ok(stat(t.client.stats(), 'udpPathReassembled') >= 20, 'the client did not reassemble UDP fragments');
    assert.equal(t.net.stats.packets, 0);
    await t.stop();
  }
});

test('--type=all uses UDP when it answers: app data never rides fake TCP', async () => {
  const t = tunnel({ transport: 'all' });
  assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths === 3 && t.client.liveConnections === 3, 2000) >= 0);
  const tcpFramesBefore = stat(t.server.stats(), 'rxFrames');
  const app = t.app();
  assert.equal(pingPong(t, app, 0, 300), 300);
  const s = t.server.stats();
  assert.ok(stat(s, 'udpPathFrames') >= 300);
  // Only keepalives on fake TCP meanwhile (3 connections, one Ping per 2 s each).
  assert.ok(stat(s, 'rxFrames') - tcpFramesBefore <= 6, `${stat(s, 'rxFrames') - tcpFramesBefore} frames on fake TCP`);
  await t.stop();
});

test('--type=all through a path that drops UDP: echo works over fake TCP within a few seconds', async () => {
  const t = new SimTunnel(crypto, { ports: PORTS, transport: 'all' });
  udpBlocker(t).on = true;
  t.startServer();
  t.startClient();
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === 3, 2000) >= 0);
  const app = t.app();
  assert.equal(pingPong(t, app, 0, 100), 100, 'fake TCP did not carry the datagrams at once');
  assert.equal(t.client.liveUdpPaths, 0);
  assert.equal(t.server.stats().udpPathFrames ?? 0, 0);
  // It keeps asking: greetings go out again every few seconds at most.
  const before = t.net.stats.udpDropped;
  t.run(20000);
  assert.ok(t.net.stats.udpDropped - before >= 3 * 4, `only ${t.net.stats.udpDropped - before} udp probes in 20 s`);
  await t.stop();
});

test('--type=all: UDP blocked mid-run moves the flows to fake TCP, unblocked moves them back; flows keep their ids', async () => {
  const t = tunnel({ transport: 'all' });
  const blocked = udpBlocker(t);
  assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths === 3 && t.client.liveConnections === 3, 2000) >= 0);
  const apps = [t.app(), t.app()];
  for (const a of apps) assert.equal(pingPong(t, a, 0, 50), 50);
  assert.equal(t.server.stats().flows, 2);

  blocked.on = true;
  const blockedAt = t.net.time.now;
  // One datagram every 50 ms from each app: find when replies come back again.
  let i = 1000;
  const answered = () => apps.every((a) => a.received.some((r) => r.data.readUInt32BE(0) === i - 1));
  const until = t.net.time.now + 15000;
  while (t.net.time.now < until) {
    for (const a of apps) t.send(a, dgram(i));
    i++;
    t.run(50);
    if (t.client.liveUdpPaths === 0 && answered()) break;
  }
  const fallbackMs = t.net.time.now - blockedAt;
  assert.equal(t.client.liveUdpPaths, 0);
  assert.ok(answered(), 'no reply over fake TCP');
  assert.ok(fallbackMs <= 6000, `fallback took ${fallbackMs} ms`);
  const tcpBefore = stat(t.server.stats(), 'rxFrames');
  for (const a of apps) assert.equal(pingPong(t, a, 5000, 50), 50, 'datagrams lost after the fallback');
  assert.ok(stat(t.server.stats(), 'rxFrames') - tcpBefore >= 100, 'the datagrams did not go on fake TCP');
  assert.equal(t.server.stats().flows, 2, 'the switch opened new flows at the server');

  blocked.on = false;
  const openedAt = t.net.time.now;
  assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths > 0, 10000) >= 0, 'udp never came back');
  const backMs = t.net.time.now - openedAt;
  console.log(`# fallback to fake TCP after ${fallbackMs} ms, back on UDP after ${backMs} ms (virtual time)`);
  assert.ok(backMs <= 6000, `return to UDP took ${backMs} ms`);
  const udpBefore = stat(t.server.stats(), 'udpPathFrames');
  for (const a of apps) assert.equal(pingPong(t, a, 9000, 50), 50, 'datagrams lost after the return');
  assert.ok(stat(t.server.stats(), 'udpPathFrames') - udpBefore >= 100, 'the datagrams did not move back to UDP');
  assert.equal(t.server.stats().flows, 2);
  await t.stop();
});

test('on the wire a UDP path shows no constant byte in its header, masked payload start, tag or counter', async () => {
  for (const mode of [{ obfs: 'none', aead: false }, { obfs: 'tls', aead: false }, { obfs: 'none', aead: true }] as const) {
    const t = new SimTunnel(crypto, { ports: [10001], transport: 'udp', mode });
    const wire: Buffer[] = [];
    t.net.udpRules.push((_s, _sp, _d, _dp, data) => (wire.push(Buffer.from(data)), 'pass'));
    t.startServer();
    t.startClient();
    assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths === 1, 2000) >= 0);
    const app = t.app();
    // The same datagram again and again: whatever repeats on the wire would be ours.
    for (let i = 0; i < 200; i++) {
      t.send(app, Buffer.alloc(100, 0x41));
      t.run(1);
    }
    t.run(50);
    const data = wire.filter((d) => d.length === 100 + udpOverhead(mode));
    assert.ok(data.length >= 400, `${data.length} data datagrams`);
    const from = mode.obfs === 'tls' ? 5 : 0;
    const constant: number[] = [];
    // Under --crypt=none the app's bytes past the first 57 travel as they are (its own ciphertext, normally),
    // and so does a repeated datagram's tag (SipHash of the plaintext, as on fake TCP); the header, those
    // 57 bytes and the counter must look random, and under aead the tag too.
    const len = data[0].length;
    const tail = mode.aead ? 8 + 16 : 8;
    const judged = [...Array(64).keys()].map((i) => from + i).concat([...Array(tail).keys()].map((i) => len - tail + i));
    for (const i of judged) if (new Set(data.map((d) => d[i])).size < 64) constant.push(i);
    assert.deepEqual(constant, [], `${mode.obfs}: offsets with few distinct values`);
    if (mode.obfs === 'tls') assert.ok(data.every((d) => d[0] === 0x17 && d.readUInt16BE(3) === d.length - 5));
    await t.stop();
  }
});
