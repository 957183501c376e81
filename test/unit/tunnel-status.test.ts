// The Status the real client and server report (--metrics), in memory: counts follow the datagrams,
// every connection is listed with its state and the client's keepalive RTT, flows carry their counts,
// refused forwards and drops land under their causes, and the counters line written after stop()
// still holds the segments sent (it used to read 0 once the injector was closed).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { prometheusText } from '../../src/ops/status';
import { sodiumCrypto } from '../sim/crypto';
import { SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

test('client and server status count the datagrams each way, list every connection, and survive stop()', async () => {
  const t = new SimTunnel(crypto, { ports: [10001, 10002, 10003], keepaliveMs: 500 }).up();
  const app = t.app();
  for (let i = 0; i < 60; i++) t.send(app, Buffer.alloc(100 + i, i));
  t.run(1200); // echoes back, and two keepalive rounds for the RTT
  assert.equal(app.received.length, 60);
  const c = t.client.status();
  const s = t.server.status();
  assert.deepEqual(c.datagrams, { in: 60, out: 60 });
  assert.deepEqual(s.datagrams, { in: 60, out: 60 }, 'server: in = from the target, out = to it');
  const bytes = Array.from({ length: 60 }, (_, i) => 100 + i).reduce((a, b) => a + b, 0);
  assert.deepEqual(c.bytes, { in: bytes, out: bytes });
  assert.deepEqual(c.connections.map((x) => [x.port, x.state, x.transport]), [[10001, 'LIVE', 'tcp'], [10002, 'LIVE', 'tcp'], [10003, 'LIVE', 'tcp']]);
  for (const x of c.connections) assert.ok(x.rttMs !== null && x.rttMs >= 0 && x.rttMs < 100, `rtt ${x.rttMs}`);
  assert.equal(c.connections.reduce((a, x) => a + x.txFrames, 0), 60, 'datagrams spread over the connections');
  assert.equal(c.connections.reduce((a, x) => a + x.rxFrames, 0), 60);
  assert.equal(s.connections.length, 3);
  assert.ok(s.connections.every((x) => x.state === 'LIVE' && x.rttMs === null));
  assert.equal(c.flowCount, 1);
  assert.deepEqual([c.flows[0].in, c.flows[0].out], [60, 60]);
  assert.equal(s.sessions, 1);
  assert.equal(s.flows[0].in, 60);
  assert.deepEqual(Object.values(c.drops).filter((n) => n !== 0), []);
  assert.match(prometheusText(c), /^rsock_connections\{state="live"\} 3$/m);
  await t.stop();
  assert.ok(t.client.stats().txSegments > 0 && t.server.stats().txSegments > 0, 'the shutdown counters still show the segments sent');
});

test('a reconnect is counted under its cause, and the slot shows its new state', async () => {
  const t = new SimTunnel(crypto, { ports: [10001], keepaliveMs: 500 }).up();
  await t.server.stop();
  t.run(3000); // silence: the client's connection is declared dead and redialed
  const c = t.client.status();
  assert.ok(c.reconnects.close >= 1, `the server's Close is counted as close: ${JSON.stringify(c.reconnects)}`);
  assert.notEqual(c.connections[0].state, 'LIVE');
  await t.stop();
});
