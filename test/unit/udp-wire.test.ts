// The UDP transport's datagram layout (src/core/udp-wire.ts): the counter's mask, the outer checks and
// the sizes docs/PROTOCOL.md §7 states.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import { writeRecordHeader } from '../../src/core/frame';
import { COUNTER_LIMIT, readCounter, udpMaxDatagram, udpOverhead, udpPayloadLength, writeCounter } from '../../src/core/udp-wire';
import { sodiumCrypto } from '../sim/crypto';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

test('the counter comes back under its key only, and its wire bytes depend on the frame they follow', () => {
  const key = crypto.randomBytes(32);
  const buf = crypto.randomBytes(64);
  for (const n of [0, 1, 255, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 12345, COUNTER_LIMIT - 1]) {
    writeCounter(crypto, key, buf, 0, 40, n);
    assert.equal(readCounter(crypto, key, buf, 0, 40), n);
  }
  writeCounter(crypto, key, buf, 0, 40, 7);
  const wire = Buffer.from(buf.subarray(40, 48));
  assert.notDeepEqual(wire, Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]), 'the counter travels in the clear');
  assert.notEqual(readCounter(crypto, crypto.randomBytes(32), buf, 0, 40), 7, 'another key read the counter');
  buf[3] ^= 1;
  assert.notEqual(readCounter(crypto, key, buf, 0, 40), 7, 'the mask ignores the frame bytes');
});

test('a counter at or beyond 2^48 is refused', () => {
  const key = crypto.randomBytes(32);
  const buf = crypto.randomBytes(64);
  writeCounter(crypto, key, buf, 0, 40, COUNTER_LIMIT);
  assert.equal(readCounter(crypto, key, buf, 0, 40), -1);
});

test('outer checks: long enough, one TLS record spanning the datagram', () => {
  const tls = { obfs: 'tls', aead: false } as const;
  const none = { obfs: 'none', aead: true } as const;
  const b = Buffer.alloc(100);
  assert.equal(udpPayloadLength(none, b, 0, 100), 100 - 7 - 16 - 8);
  assert.equal(udpPayloadLength(none, b, 0, 30), -1);
  assert.equal(udpPayloadLength(tls, b, 0, 100), -1, 'no record header');
  writeRecordHeader(b, 0, 95);
  assert.equal(udpPayloadLength(tls, b, 0, 100), 100 - 5 - 7 - 8 - 8);
  assert.equal(udpPayloadLength(tls, b, 0, 99), -1, 'the record does not span the datagram');
});

test('sizes as documented: overhead 23/31/28/36, 1424 bytes in one frame under tls', () => {
  assert.equal(udpOverhead({ obfs: 'none', aead: false }), 23);
  assert.equal(udpOverhead({ obfs: 'none', aead: true }), 31);
  assert.equal(udpOverhead({ obfs: 'tls', aead: false }), 28);
  assert.equal(udpOverhead({ obfs: 'tls', aead: true }), 36);
  assert.equal(udpMaxDatagram({ obfs: 'tls', aead: false }), 1424);
});
