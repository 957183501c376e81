// The TLS parsers against hostile bytes: every truncation, every single-byte change of every length
// field, random buffers and random mutations of valid records. They must answer null, never throw.
// The PRNG is seeded so a failure names a case that can be replayed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SERVER_HELLO_LEN, buildClientHello, buildServerHello, parseClientHello, parseServerHello, readRecordHeader, sniError,
} from '../../src/core/tls-shape';
import { CURL_HELLO, S_CLIENT_HELLO, lengthFieldOffsets } from '../lib/tls-walk';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const bytes = (rnd: () => number, n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)));

function clientHello(sni: string, seed: number): Buffer {
  const rnd = prng(seed);
  const out = Buffer.alloc(1200);
  const n = buildClientHello(out, 0, { sni, random: bytes(rnd, 32), sessionId: bytes(rnd, 32), keyShare: bytes(rnd, 32), grease: seed & 0xffff });
  return out.subarray(0, n);
}

function serverHello(seed: number): Buffer {
  const rnd = prng(seed);
  const out = Buffer.alloc(SERVER_HELLO_LEN);
  buildServerHello(out, 0, { random: bytes(rnd, 32), sessionIdEcho: bytes(rnd, 32), keyShare: bytes(rnd, 32) });
  return out;
}

const HELLOS: [string, Buffer][] = [
  ['ours, short SNI', clientHello('www.microsoft.com', 1)],
  ['ours, 60-char SNI', clientHello('img2-eu-west-1.static-assets.cloudfront-delivery.example.com', 2)],
  ['ours, unpadded 253-char SNI', clientHello(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.'), 3)],
  ['curl', CURL_HELLO],
  ['openssl s_client', S_CLIENT_HELLO],
];

test('every truncation of a hello is refused, whether the buffer ends there or len says so', () => {
  for (const [name, ch] of HELLOS) {
    assert.ok(parseClientHello(ch, 0, ch.length), name);
    for (let l = 0; l < ch.length; l++) {
      assert.equal(parseClientHello(ch, 0, l), null, `${name}: len ${l}`);
      assert.equal(parseClientHello(ch.subarray(0, l), 0, l), null, `${name}: buffer of ${l}`);
    }
  }
  const sh = serverHello(4);
  assert.ok(parseServerHello(sh, 0, sh.length));
  for (let l = 0; l < sh.length; l++) {
    assert.equal(parseServerHello(sh, 0, l), null, `ServerHello len ${l}`);
    assert.equal(parseServerHello(sh.subarray(0, l), 0, l), null, `ServerHello buffer of ${l}`);
  }
});

test('every single-byte change of every length field in a hello is refused', () => {
  const cases: [string, Buffer, (b: Buffer) => unknown][] = [
    ...HELLOS.map(([name, ch]): [string, Buffer, (b: Buffer) => unknown] => [name, ch, (b) => parseClientHello(b, 0, b.length)]),
    ['ServerHello + CCS', serverHello(5), (b) => parseServerHello(b, 0, b.length)],
  ];
  for (const [name, rec, parse] of cases) {
    const fields = lengthFieldOffsets(rec);
    assert.ok(fields.length >= (name === 'ServerHello + CCS' ? 14 : 30), `${name}: ${fields.length} length bytes found`);
    for (const at of fields) {
      const b = Buffer.from(rec);
      for (let v = 0; v < 256; v++) {
        if (v === rec[at]) continue;
        b[at] = v;
        assert.equal(parse(b), null, `${name}: byte ${at} ${rec[at]} -> ${v}`);
      }
    }
  }
});

test('the length fields found are the ones the layout has (the corruption test covers what it claims)', () => {
  const ch = clientHello('www.microsoft.com', 6);
  const f = lengthFieldOffsets(ch);
  for (const at of [3, 4, 6, 7, 8, 43, 76, 77, 110, 112, 113, 116, 117, 120, 121, 122, 123, 125, 126]) assert.ok(f.includes(at), `${at}`);
  assert.equal(new Set(f).size, f.length);
  for (const at of f) assert.ok(at < ch.length);
  assert.deepEqual(lengthFieldOffsets(serverHello(7)), [3, 4, 6, 7, 8, 43, 79, 80, 83, 84, 89, 90, 93, 94, 130, 131]);
});

test('10,000 random buffers: every parser answers null without throwing', () => {
  const rnd = prng(0xc0ffee);
  const prefixes = [[], [0x16, 3, 1], [0x16, 3, 3], [0x16, 3, 1, 0x01, 0xfc, 0x01, 0x00, 0x01, 0xf8, 0x03, 0x03]];
  for (let i = 0; i < 10_000; i++) {
    const b = bytes(rnd, Math.floor(rnd() * 700));
    Buffer.from(prefixes[i % prefixes.length]).copy(b);
    const off = Math.floor(rnd() * 4);
    const len = Math.max(0, b.length - off - Math.floor(rnd() * 3));
    assert.equal(parseClientHello(b, off, len), null, `buffer ${i}`);
    assert.equal(parseServerHello(b, off, len), null, `buffer ${i}`);
    readRecordHeader(b, off, len);
  }
  for (const [off, len] of [[-1, 10], [0, -1], [5, 100], [NaN, 5], [0, Infinity]]) {
    assert.equal(parseClientHello(Buffer.alloc(50), off, len), null);
    assert.equal(parseServerHello(Buffer.alloc(50), off, len), null);
    assert.equal(readRecordHeader(Buffer.alloc(50), off, len), null);
  }
});

test('10,000 random mutations of valid hellos: no throw, and anything accepted is self-consistent', () => {
  const rnd = prng(0xbadc0de);
  const recs = [...HELLOS.map(([, b]) => b), serverHello(8)];
  let accepted = 0;
  for (let i = 0; i < 10_000; i++) {
    const src = recs[i % recs.length];
    const b = Buffer.from(src);
    for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    const len = rnd() < 0.2 ? Math.floor(rnd() * b.length) : b.length;
    const c = parseClientHello(b, 0, len);
    if (c) {
      accepted++;
      assert.ok(c.recordLen <= len && sniError(c.sni) === null && c.keyShare.length === 32, `mutation ${i}`);
      assert.deepEqual(c.sessionId, b.subarray(c.sessionIdOff, c.sessionIdOff + 32));
    }
    const s = parseServerHello(b, 0, len);
    if (s) {
      accepted++;
      assert.ok(s.consumed <= len, `mutation ${i}`);
      assert.deepEqual(s.keyShare, b.subarray(s.keyShareOff, s.keyShareOff + 32));
    }
  }
  // Changes to random, session id, key and padding bytes keep a hello valid: some must pass.
  assert.ok(accepted > 100, `${accepted} accepted`);
});
