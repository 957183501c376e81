import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveKeys } from '../../src/core/keys';
import type { Mac } from '../../src/core/mac';
import { sodiumMac } from '../sim/mac';

let mac: Mac;
before(async () => {
  mac = await sodiumMac();
});

test('one secret gives two distinct 16-byte keys, the same on both sides', () => {
  const a = deriveKeys(mac, 'correct horse');
  const b = deriveKeys(mac, 'correct horse');
  assert.equal(a.clientToServer.length, 16);
  assert.equal(a.serverToClient.length, 16);
  assert.ok(a.clientToServer.equals(b.clientToServer));
  assert.ok(a.serverToClient.equals(b.serverToClient));
  assert.ok(!a.clientToServer.equals(a.serverToClient), 'directions must differ');
  const c = deriveKeys(mac, 'correct horsf');
  assert.ok(!a.clientToServer.equals(c.clientToServer), 'a different secret gives different keys');
  const long = deriveKeys(mac, 'x'.repeat(10_000));
  assert.equal(long.clientToServer.length, 16);
});

test('session ids are random 32-bit numbers', () => {
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = mac.randomU32();
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
    seen.add(v);
  }
  assert.ok(seen.size > 990);
});
