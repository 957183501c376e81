import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameType, frameOverhead, JOIN_LEN, MAX_RECORD, readJoin, readRecordHeader, recordPadding, writeHeader, writeJoin, writeRecordHeader,
} from '../../src/core/frame';

test('header: length, type and arg in 7 bytes, big-endian', () => {
  const b = Buffer.alloc(7);
  writeHeader(b, 0, FrameType.Data, 0xdeadbeef, 1433);
  assert.deepEqual([...b], [0x05, 0x99, 1, 0xde, 0xad, 0xbe, 0xef]);
  writeHeader(b, 0, FrameType.Ping, -2, 0xffff); // arg as its 32 bits, as u32
  assert.deepEqual([...b], [0xff, 0xff, FrameType.Ping, 0xff, 0xff, 0xff, 0xfe]);
  const before = Buffer.from(b);
  for (const len of [0x10000, -1, NaN]) assert.throws(() => writeHeader(b, 0, FrameType.Data, 1, len), RangeError);
  assert.throws(() => writeRecordHeader(b, 0, 0x10000), RangeError);
  assert.deepEqual(b, before, 'a length that does not fit writes nothing');
});

test('overhead per mode: 15 compact, 20 in TLS records, 8 more with aead; the issue limits are 16 and 24 (+16)', () => {
  assert.equal(frameOverhead({ obfs: 'none', aead: false }), 15);
  assert.equal(frameOverhead({ obfs: 'tls', aead: false }), 20);
  assert.equal(frameOverhead({ obfs: 'none', aead: true }), 23);
  assert.equal(frameOverhead({ obfs: 'tls', aead: true }), 28);
});

test('TLS records are never shorter than a real TLS 1.3 record: control frames get padding', () => {
  assert.equal(recordPadding({ obfs: 'tls', aead: false }, 0), 2);
  assert.equal(recordPadding({ obfs: 'tls', aead: false }, 2), 0);
  assert.equal(recordPadding({ obfs: 'tls', aead: true }, 0), 0);
  assert.equal(recordPadding({ obfs: 'none', aead: false }, 0), 0);
});

test('record header: 17 03 03 + length; anything else, or longer than TLS allows, is not a record', () => {
  const b = Buffer.alloc(5);
  writeRecordHeader(b, 0, 1200);
  assert.deepEqual([...b], [0x17, 3, 3, 0x04, 0xb0]);
  assert.equal(readRecordHeader(b, 0), 1200);
  for (const [i, v] of [[0, 0x16], [1, 2], [2, 1]] as const) {
    const c = Buffer.from(b);
    c[i] = v;
    assert.equal(readRecordHeader(c, 0), -1);
  }
  b.writeUInt16BE(MAX_RECORD + 1, 3);
  assert.equal(readRecordHeader(b, 0), -1);
});

test('Join round trip; a short one reads as null', () => {
  const b = Buffer.alloc(JOIN_LEN);
  writeJoin(b, 0, { version: 2, keepaliveMs: 2000, slot: 7 });
  assert.deepEqual(readJoin(b, 0, JOIN_LEN), { version: 2, keepaliveMs: 2000, slot: 7, forwards: null });
  assert.equal(readJoin(b, 0, JOIN_LEN - 1), null);
});
