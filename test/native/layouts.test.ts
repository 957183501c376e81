// The record layouts of src/io/native.ts against the ones the C++ code uses (native/records.h), which
// the addon exports as `layouts`: a field moved on one side only fails here, not as garbled packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CAPTURE, CAPTURE_STRIDE, TX, TX_STRIDE, UDP_RX, UDP_RX_STRIDE, UDP_TX, UDP_TX_STRIDE } from '../../src/io/native';
import { CRYPTO, CRYPTO_STRIDE, KEY_BYTES, KEY_SLOT } from '../../src/core/crypto';
import { native } from './helpers';

test('layouts: the TS record constants equal the addon\'s', () => {
  assert.deepEqual(native.layouts, {
    CAPTURE: { STRIDE: CAPTURE_STRIDE, ...CAPTURE },
    TX: { STRIDE: TX_STRIDE, ...TX },
    UDP_RX: { STRIDE: UDP_RX_STRIDE, ...UDP_RX },
    UDP_TX: { STRIDE: UDP_TX_STRIDE, ...UDP_TX },
    CRYPTO: { STRIDE: CRYPTO_STRIDE, ...CRYPTO },
    KEY_SLOT: { ...KEY_SLOT },
  });
});

test('layouts: every record\'s fields are the words 0 .. STRIDE-1, each once', () => {
  const { KEY_SLOT: _bytes, ...records } = native.layouts; // a slot is bytes, not words: checked below
  for (const [name, layout] of Object.entries(records)) {
    const words = Object.entries(layout).filter(([k]) => k !== 'STRIDE').map(([, v]) => v).sort((a, b) => a - b);
    assert.deepEqual(words, Array.from({ length: layout.STRIDE }, (_, i) => i), name);
  }
});

test('layouts: a key slot is MASK, MAC and AEAD back to back, of the sizes libsodium wants', () => {
  const s = native.layouts.KEY_SLOT;
  assert.equal(s.MASK, 0);
  assert.deepEqual(KEY_BYTES, { MASK: 32, MAC: 16, AEAD: 32 });
  assert.equal(s.MAC, s.MASK + KEY_BYTES.MASK);
  assert.equal(s.AEAD, s.MAC + KEY_BYTES.MAC);
  assert.equal(s.BYTES, s.AEAD + KEY_BYTES.AEAD);
});
