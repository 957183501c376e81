// Datagrams of any size through the real client and server in memory (issue 8, first step): what does
// not fit one segment travels as fragments and comes out whole; a lost fragment loses only its datagram.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { sodiumCrypto } from '../sim/crypto';
import { SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

const dgram = (i: number, size: number) => {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (k * 31 + i) & 0xff;
  if (size >= 4) b.writeUInt32BE(i, 0);
  return b;
};
const SIZES = [1, 1400, 1428, 1429, 1452, 3076, 9000, 65507];

for (const mode of [{ obfs: 'tls', aead: false }, { obfs: 'none', aead: true }] as const) {
  test(`obfs=${mode.obfs}${mode.aead ? ' aead' : ''}: datagrams of ${SIZES.join(', ')} bytes go both ways intact`, async () => {
    const t = new SimTunnel(crypto, { ports: [10001, 10002], mode }).up();
    const app = t.app();
    SIZES.forEach((size, i) => t.send(app, dgram(i, size)));
    t.run(200);
    // Sizes are distinct, so a datagram is known by its length (a 1-byte one has no room for an index).
    const back = new Map(app.received.map((r) => [r.data.length, r.data]));
    SIZES.forEach((size, i) => assert.ok(back.get(size)?.equals(dgram(i, size)), `${size} B did not come back intact`));
    assert.equal(app.received.length, SIZES.length);
    assert.equal(t.server.stats().droppedTooBig + t.client.stats().droppedTooBig, 0);
    assert.equal(t.net.stats.kernelRsts, 0);
    await t.stop();
  });
}

test('a lost fragment loses only its datagram; the incomplete one is dropped after a second', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] }).up();
  const app = t.app();
  let seen = 0;
  // Drops the 3rd client data segment carrying part of the first big datagram.
  t.net.rules.push((_pkt, seg) => (seg && seg.srcPort !== 10001 && seg.wireLen > 1000 && ++seen === 3 ? 'drop' : 'pass'));
  for (let i = 0; i < 5; i++) t.send(app, dgram(i, 6000));
  t.run(100);
  const got = app.received.map((r) => r.data.readUInt32BE(0)).sort();
  assert.deepEqual(got, [1, 2, 3, 4]);
  const held = () => t.server.stats();
  assert.ok(held().rxFragments >= 20);
  t.run(1500);
  assert.equal(held().reassemblyLost, 1, 'the incomplete datagram timed out');
  t.send(app, dgram(9, 6000));
  t.run(100);
  assert.ok(app.received.some((r) => r.data.readUInt32BE(0) === 9), 'later datagrams still come through');
  await t.stop();
});
