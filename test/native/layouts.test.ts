// The record layouts of src/io/native.ts against the ones the C++ code uses (native/records.h), which
// the addon exports as `layouts`: a field moved on one side only fails here, not as garbled packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CAPTURE, CAPTURE_STRIDE, MAC, MAC_STRIDE, TX, TX_STRIDE, UDP_RX, UDP_RX_STRIDE, UDP_TX, UDP_TX_STRIDE,
} from '../../src/io/native';
import { native } from './helpers';

test('layouts: the TS record constants equal the addon\'s', () => {
  assert.deepEqual(native.layouts, {
    CAPTURE: { STRIDE: CAPTURE_STRIDE, ...CAPTURE },
    TX: { STRIDE: TX_STRIDE, ...TX },
    UDP_RX: { STRIDE: UDP_RX_STRIDE, ...UDP_RX },
    UDP_TX: { STRIDE: UDP_TX_STRIDE, ...UDP_TX },
    MAC: { STRIDE: MAC_STRIDE, ...MAC },
  });
});

test('layouts: every record\'s fields are the words 0 .. STRIDE-1, each once', () => {
  for (const [name, layout] of Object.entries(native.layouts)) {
    const words = Object.entries(layout).filter(([k]) => k !== 'STRIDE').map(([, v]) => v).sort((a, b) => a - b);
    assert.deepEqual(words, Array.from({ length: layout.STRIDE }, (_, i) => i), name);
  }
});
