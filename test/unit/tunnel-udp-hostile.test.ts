// Hostile input on the UDP transport: a prober's bytes get no answer, replayed and altered datagrams
// move nothing, a recorded greeting replayed elsewhere never becomes a session's path, and ends that
// disagree (key, --type) never talk.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { clientGreeting } from '../../src/core/greeting';
import { ipToInt } from '../../src/core/ipv4';
import { handshakeKeys } from '../../src/core/keys';
import { sodiumCrypto } from '../sim/crypto';
import { CLIENT_IP, SERVER_IP, SimTunnel, SimTunnelOptions } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

const PORTS = [10001, 10002];
const SERVER = ipToInt(SERVER_IP) >>> 0;
const CLIENT = ipToInt(CLIENT_IP) >>> 0;

interface Seen {
  srcIp: number;
  srcPort: number;
  dstIp: number;
  dstPort: number;
  data: Buffer;
}

/** A tunnel whose UDP between the hosts is recorded. */
function recorded(o: SimTunnelOptions = {}): { t: SimTunnel; seen: Seen[] } {
  const t = new SimTunnel(crypto, { ports: PORTS, transport: 'udp', ...o });
  const seen: Seen[] = [];
  t.net.udpRules.push((srcIp, srcPort, dstIp, dstPort, data) => {
    seen.push({ srcIp, srcPort, dstIp, dstPort, data: Buffer.from(data) });
    return 'pass';
  });
  t.startServer();
  t.startClient();
  return { t, seen };
}

function upWithTraffic(t: SimTunnel, n = 20): void {
  assert.ok(t.net.time.runUntil(() => t.client.liveUdpPaths === PORTS.length, 2000) >= 0, 'udp paths did not come up');
  const app = t.app();
  for (let i = 0; i < n; i++) t.send(app, Buffer.from(`datagram ${i}`));
  t.run(50);
  assert.equal(app.received.length, n);
}

const stat = (s: Record<string, number>, k: string) => s[k] ?? 0;

test('a prober gets no answer to anything: noise, a wrong-key greeting, a truncated greeting, recorded frames', async () => {
  const { t, seen } = recorded();
  upWithTraffic(t);
  const prober = t.net.host('prober', ipToInt('10.9.0.66'));
  const sock = prober.udpSocket(5555);
  const mode = { obfs: 'tls', aead: false } as const;
  const good = clientGreeting(crypto, handshakeKeys(crypto, 'sim-key', mode), 'tls', 'sim.example').bytes;
  const frames = seen.filter((s) => s.srcIp === CLIENT && s.data.length < 200).map((s) => s.data);
  const probes: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    crypto.randomBytes(1200),
    clientGreeting(crypto, handshakeKeys(crypto, 'another key', mode), 'tls', 'sim.example').bytes,
    clientGreeting(crypto, handshakeKeys(crypto, 'sim-key', { obfs: 'none', aead: false }), 'none', 'x').bytes,
    good.subarray(0, good.length - 1),
    ...frames,
  ];
  const before = t.server.stats();
  for (const port of PORTS) for (const p of probes) sock.send(SERVER, port, p);
  t.run(2000);
  assert.equal(sock.received.length, 0, 'the server answered a prober');
  const after = t.server.stats();
  assert.equal(after.udpPaths, before.udpPaths, 'a prober made the server keep state');
  assert.equal(after.toTarget, before.toTarget, 'a prober reached the target');
  assert.ok(after.udpProbes - before.udpProbes >= 2 * (probes.length - frames.length));
  await t.stop();
});

test('replayed and altered datagrams from the client address move nothing', async () => {
  const { t, seen } = recorded();
  upWithTraffic(t);
  const fromClient = seen.filter((s) => s.srcIp === CLIENT);
  const before = t.server.stats();
  for (const s of fromClient) t.net.sendUdp(t.clientHost, s.srcPort, s.dstIp, s.dstPort, s.data);
  t.run(50);
  const mid = t.server.stats();
  assert.equal(mid.toTarget, before.toTarget, 'a replayed datagram reached the target');
  assert.ok(mid.udpPathReplayed - before.udpPathReplayed >= 20, `only ${mid.udpPathReplayed - before.udpPathReplayed} replays seen`);
  // Every byte position of one data datagram flipped in turn: none opens.
  const data = fromClient.filter((s) => s.data.length > 30 && s.data.length < 100).at(-1)!;
  for (let i = 0; i < data.data.length; i++) {
    const bad = Buffer.from(data.data);
    bad[i] ^= 0x40;
    t.net.sendUdp(t.clientHost, data.srcPort, data.dstIp, data.dstPort, bad);
  }
  t.run(50);
  const after = t.server.stats();
  assert.equal(after.toTarget, before.toTarget, 'an altered datagram reached the target');
  const dropped = after.udpPathForged + after.udpPathMalformed + after.udpPathReplayed - (mid.udpPathForged + mid.udpPathMalformed + mid.udpPathReplayed);
  assert.equal(dropped, data.data.length, 'every altered datagram is counted as dropped');
  await t.stop();
});

test('a recorded greeting replayed from another address is answered but never joins, and is forgotten', async () => {
  const { t, seen } = recorded();
  upWithTraffic(t);
  const greeting = seen.find((s) => s.srcIp === CLIENT)!;
  const join = seen.filter((s) => s.srcIp === CLIENT && s.srcPort === greeting.srcPort && s.dstPort === greeting.dstPort)[1];
  const sessionsBefore = t.server.stats().sessions;
  const replayer = t.net.host('replayer', ipToInt('10.9.0.77')).udpSocket(6000);
  replayer.send(SERVER, greeting.dstPort, greeting.data);
  t.run(10);
  replayer.send(SERVER, greeting.dstPort, join.data);
  t.run(100);
  assert.equal(replayer.received.length, 1, 'the replayed greeting gets one answer (a fresh nonce: the recorder cannot use it)');
  assert.equal(t.server.stats().udpPaths, PORTS.length + 1);
  assert.equal(t.server.stats().sessions, sessionsBefore);
  t.run(11000);
  assert.equal(t.server.stats().udpPaths, PORTS.length, 'the unjoined path was kept');
  assert.equal(replayer.received.length, 1, 'the replayer got more than the answer');
  await t.stop();
});

test('a client with another key, or a server that takes only fake TCP, never gets a UDP answer', async () => {
  for (const server of [{ key: 'another key' }, { transport: 'tcp' as const }]) {
    const t = new SimTunnel(crypto, { ports: PORTS, transport: 'udp' });
    const fromServer: Buffer[] = [];
    t.net.udpRules.push((src, _sp, _d, _dp, data) => (src === SERVER && fromServer.push(data), 'pass'));
    t.startServer(server);
    t.startClient();
    const app = t.app();
    t.run(5000);
    t.send(app, Buffer.from('hello'));
    t.run(100);
    assert.equal(t.client.liveUdpPaths, 0, JSON.stringify(server));
    assert.equal(fromServer.length, 0, `the server answered: ${JSON.stringify(server)}`);
    assert.equal(app.received.length, 0);
    assert.ok(t.client.stats().droppedNoConn >= 1);
    await t.stop();
  }
});
