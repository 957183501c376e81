import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { connectionKeys, handshakeKeys } from '../../src/core/keys';
import { sodiumCrypto } from '../sim/crypto';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

test('handshake keys depend on the secret and on the wire mode, so a mismatch of either fails the handshake', () => {
  const a = handshakeKeys(crypto, 'secret', { obfs: 'tls', aead: false });
  const again = handshakeKeys(crypto, 'secret', { obfs: 'tls', aead: false });
  assert.ok(a.clientHello.equals(again.clientHello) && a.serverHello.equals(again.serverHello));
  const others = [
    handshakeKeys(crypto, 'secreT', { obfs: 'tls', aead: false }),
    handshakeKeys(crypto, 'secret', { obfs: 'none', aead: false }),
    handshakeKeys(crypto, 'secret', { obfs: 'tls', aead: true }),
  ];
  for (const o of others) assert.ok(!o.clientHello.equals(a.clientHello) && !o.serverHello.equals(a.serverHello));
  assert.ok(!a.clientHello.equals(a.serverHello));
  assert.equal(a.master.length, 32);
});

test('connection keys come from both nonces: each nonce changes every key, and the directions differ', () => {
  const m = handshakeKeys(crypto, 'secret', { obfs: 'tls', aead: false }).master;
  const nc = crypto.randomBytes(32);
  const ns = crypto.randomBytes(32);
  const k = connectionKeys(crypto, m, nc, ns);
  const all = (x: typeof k) => [x.clientToServer, x.serverToClient].flatMap((d) => [d.mask, d.mac, d.aead]);
  assert.deepEqual(all(k).map((b) => b.length), [32, 16, 32, 32, 16, 32]);
  assert.equal(new Set(all(k).map((b) => b.toString('hex'))).size, 6);
  assert.ok(all(connectionKeys(crypto, m, nc, ns)).every((b, i) => b.equals(all(k)[i])));
  const other = [connectionKeys(crypto, m, crypto.randomBytes(32), ns), connectionKeys(crypto, m, nc, crypto.randomBytes(32))];
  for (const o of other) assert.ok(all(o).every((b, i) => !b.equals(all(k)[i])));
});
