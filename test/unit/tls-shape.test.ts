// The TLS shapes as built and as read back: what lands where, sizes, GREASE, padding, the record
// layer's limits, and real ClientHellos captured from curl and openssl. Hostile input is in
// tls-shape-hostile.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  APP_DATA_HEADER, CH_RANDOM_OFF, CH_SESSION_ID_OFF, CLIENT_HELLO_PAD_TO, ContentType, MAX_CIPHERTEXT, MAX_PLAINTEXT,
  SERVER_HELLO_LEN, SH_KEY_SHARE_OFF, SH_RANDOM_OFF, SH_SESSION_ID_OFF, buildClientHello, buildServerHello,
  parseClientHello, parseServerHello, readRecordHeader, sniError, writeAppDataHeader, ClientHelloParams,
} from '../../src/core/tls-shape';
import { CURL_HELLO, S_CLIENT_HELLO, extensions } from '../lib/tls-walk';

const fill = (v: number) => Buffer.alloc(32, v);
const seq32 = (from: number) => Buffer.from(Array.from({ length: 32 }, (_, i) => (from + i) & 0xff));

function params(over: Partial<ClientHelloParams> = {}): ClientHelloParams {
  return { sni: 'www.microsoft.com', random: seq32(0), sessionId: seq32(100), keyShare: seq32(50), grease: 0x1234, ...over };
}

function hello(over: Partial<ClientHelloParams> = {}): Buffer {
  const out = Buffer.alloc(2000);
  return out.subarray(0, buildClientHello(out, 0, params(over)));
}

const isGrease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 12 === ((v >> 4) & 0xf);
const LONG_SNI = 'img2-eu-west-1.static-assets.cloudfront-delivery.example.com';

test('ClientHello: one 517-byte handshake record; random, session id and key share where the parser finds them', () => {
  const ch = hello();
  assert.equal(ch.length, CLIENT_HELLO_PAD_TO);
  assert.deepEqual([...ch.subarray(0, 5)], [0x16, 0x03, 0x01, (ch.length - 5) >> 8, (ch.length - 5) & 0xff]);
  assert.equal(ch[5], 1);
  assert.equal(ch.readUIntBE(6, 3), ch.length - 9);
  assert.equal(ch.readUInt16BE(9), 0x0303);
  assert.deepEqual(ch.subarray(CH_RANDOM_OFF, CH_RANDOM_OFF + 32), seq32(0));
  assert.equal(ch[CH_SESSION_ID_OFF - 1], 32);
  assert.deepEqual(ch.subarray(CH_SESSION_ID_OFF, CH_SESSION_ID_OFF + 32), seq32(100));
  const r = parseClientHello(ch, 0, ch.length);
  assert.ok(r);
  assert.equal(r.sni, 'www.microsoft.com');
  assert.equal(r.recordLen, 517);
  assert.equal(r.sessionIdOff, CH_SESSION_ID_OFF);
  assert.deepEqual(r.random, seq32(0));
  assert.deepEqual(r.sessionId, seq32(100));
  assert.deepEqual(r.keyShare, seq32(50));
  assert.deepEqual(ch.subarray(r.keyShareOff, r.keyShareOff + 32), seq32(50));
});

test("ClientHello: the key share's top bit is cleared, the caller's buffer is not touched", () => {
  const key = fill(0xff);
  const r = parseClientHello(hello({ keyShare: key }), 0, 517);
  assert.ok(r);
  assert.equal(r.keyShare[31], 0x7f);
  assert.deepEqual(r.keyShare.subarray(0, 31), Buffer.alloc(31, 0xff));
  assert.deepEqual(key, fill(0xff));
});

test("ClientHello: Chrome's suites and extension order, with GREASE in its five places", () => {
  const ch = hello();
  const suites = ch.readUInt16BE(76);
  const list = Array.from({ length: suites / 2 }, (_, i) => ch.readUInt16BE(78 + 2 * i));
  assert.ok(isGrease(list[0]));
  assert.deepEqual(list.slice(1), [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x9c, 0x9d, 0x2f, 0x35]);
  const exts = extensions(ch);
  const types = exts.map((e) => (isGrease(e.type) ? 'G' : e.type));
  assert.deepEqual(types, ['G', 0, 23, 0xff01, 10, 11, 35, 16, 5, 13, 18, 51, 45, 43, 27, 0x4469, 'G', 21]);
  assert.notEqual(exts[0].type, exts[16].type);
  assert.equal(exts[16].len, 1);
  const body = (t: number) => exts.find((e) => e.type === t)!.body;
  const groupGrease = ch.readUInt16BE(body(10) + 2);
  assert.ok(isGrease(groupGrease));
  assert.equal(ch.readUInt16BE(body(51) + 2), groupGrease, 'key_share GREASE entry uses the supported_groups GREASE');
  assert.ok(isGrease(ch.readUInt16BE(body(43) + 1)));
  assert.deepEqual(ch.subarray(body(16) + 2, body(16) + 14).toString('latin1'), '\x02h2\x08http/1.1');
});

test('ClientHello: GREASE follows the seed, is always valid GREASE, the two GREASE extensions always differ', () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 65536; seed += 97) {
    const ch = hello({ grease: seed });
    const exts = extensions(ch);
    const values = [ch.readUInt16BE(78), exts[0].type, exts[16].type];
    for (const v of values) assert.ok(isGrease(v), `seed ${seed}: ${v.toString(16)}`);
    assert.notEqual(exts[0].type, exts[16].type, `seed ${seed}`);
    seen.add(values[0]);
    assert.ok(parseClientHello(ch, 0, ch.length), `seed ${seed}`);
  }
  assert.equal(seen.size, 16, 'every GREASE value turns up as the cipher GREASE');
  assert.notDeepEqual(hello({ grease: 1 }), hello({ grease: 2 }));
});

test('ClientHello padding: to padTo exactly, one byte when less than 5 are missing, none past padTo', () => {
  const natural = hello({ padTo: 0 }).length;
  assert.equal(natural, 298 + 'www.microsoft.com'.length);
  assert.ok(!extensions(hello({ padTo: 0 })).some((e) => e.type === 21));
  for (const padTo of [natural + 5, natural + 6, 517, 600, 1400]) {
    const ch = hello({ padTo });
    assert.equal(ch.length, padTo);
    assert.equal(extensions(ch).at(-1)!.type, 21, 'padding is the last extension, as in BoringSSL');
    assert.ok(parseClientHello(ch, 0, ch.length));
  }
  for (let gap = 1; gap < 5; gap++) {
    const ch = hello({ padTo: natural + gap });
    assert.equal(ch.length, natural + 5);
    assert.equal(extensions(ch).at(-1)!.len, 1);
  }
  assert.equal(hello({ padTo: natural }).length, natural);
  const long = 'a'.repeat(63) + '.' + 'b'.repeat(63) + '.' + 'c'.repeat(63) + '.' + 'd'.repeat(61);
  assert.equal(long.length, 253);
  const ch = hello({ sni: long });
  assert.equal(ch.length, 298 + 253, 'a record already past 517 is not padded');
  assert.equal(parseClientHello(ch, 0, ch.length)?.sni, long);
  assert.equal(hello({ sni: LONG_SNI }).length, 517);
});

test('ClientHello builds at an offset, and refuses a short buffer without writing', () => {
  const out = Buffer.alloc(700, 0xee);
  assert.equal(buildClientHello(out, 100, params()), 517);
  assert.equal(out[99], 0xee);
  assert.equal(out[617], 0xee);
  assert.equal(parseClientHello(out, 100, 600)?.recordLen, 517, 'bytes after the record are not part of it');
  const short = Buffer.alloc(516, 0xee);
  assert.throws(() => buildClientHello(short, 0, params()), RangeError);
  assert.throws(() => buildClientHello(out, 200, params()), RangeError);
  assert.deepEqual(short, Buffer.alloc(516, 0xee));
});

test('ClientHello: a bad SNI or parameter is a RangeError naming the problem', () => {
  const bad = ['', 'a'.repeat(64) + '.com', 'x.'.repeat(126) + 'ab', 'under_score.com', '-lead.com', 'trail-.com', 'dot.com.',
    '.dot.com', 'a..b', '192.168.1.1', 'bücher.de', 'sp ace.com', 'a.b/c'];
  for (const sni of bad) {
    assert.notEqual(sniError(sni), null, sni);
    assert.throws(() => hello({ sni }), (e: Error) => e instanceof RangeError && e.message.startsWith(`invalid SNI "${sni}"`), sni);
  }
  for (const sni of ['localhost', 'example.org', 'a-b.c0m', 'xn--bcher-kva.de', '1.2.3.example', LONG_SNI]) {
    assert.equal(sniError(sni), null, sni);
    const ch = hello({ sni });
    assert.equal(parseClientHello(ch, 0, ch.length)?.sni, sni);
  }
  assert.throws(() => hello({ random: Buffer.alloc(31) }), /random must be a 32-byte Buffer/);
  assert.throws(() => hello({ sessionId: Buffer.alloc(33) }), /sessionId/);
  assert.throws(() => hello({ keyShare: Buffer.alloc(0) }), /keyShare/);
  assert.throws(() => hello({ padTo: 1.5 }), /padTo/);
  assert.throws(() => hello({ padTo: MAX_PLAINTEXT + 6 }), /padTo/);
});

test('ClientHello: the session id can be zeroed in place for a MAC and put back; parsed Buffers are copies', () => {
  const ch = hello();
  const r = parseClientHello(ch, 0, ch.length)!;
  const saved = Buffer.from(ch.subarray(r.sessionIdOff, r.sessionIdOff + 32));
  ch.fill(0, r.sessionIdOff, r.sessionIdOff + 32);
  assert.deepEqual(r.sessionId, seq32(100), 'the parsed session id does not change with the record');
  assert.deepEqual(parseClientHello(ch, 0, ch.length)!.sessionId, Buffer.alloc(32));
  saved.copy(ch, r.sessionIdOff);
  assert.deepEqual(ch, hello());
});

test('real ClientHellos: curl and openssl s_client (OpenSSL 3.0.19) parse', () => {
  const c = parseClientHello(CURL_HELLO, 0, CURL_HELLO.length);
  assert.ok(c);
  assert.equal(c.sni, 'www.example.org');
  assert.equal(c.recordLen, 517);
  assert.deepEqual(c.random, CURL_HELLO.subarray(11, 43));
  assert.deepEqual(c.sessionId, CURL_HELLO.subarray(44, 76));
  assert.equal(c.keyShare.toString('hex'), '481522be9ebdae2f62563d726749d2e0b9fbb21210d0ca1db743c73f1a9f2a6f');
  const s = parseClientHello(S_CLIENT_HELLO, 0, S_CLIENT_HELLO.length);
  assert.ok(s);
  assert.equal(s.sni, 'example.org');
  assert.equal(s.recordLen, 317);
  assert.equal(s.keyShare.toString('hex'), '39650b7a8d45fe4474b26556f7c2c900b83b10ea67fa794d0c85bdcbbe024561');
});

function serverHello(key = seq32(50), random = seq32(0)): Buffer {
  const out = Buffer.alloc(SERVER_HELLO_LEN);
  assert.equal(buildServerHello(out, 0, { random, sessionIdEcho: seq32(100), keyShare: key }), SERVER_HELLO_LEN);
  return out;
}

test('ServerHello + CCS: 133 bytes, TLS 1.3 shape, fields where the parser finds them', () => {
  const sh = serverHello();
  assert.equal(SERVER_HELLO_LEN, 133);
  assert.deepEqual([...sh.subarray(0, 6)], [0x16, 0x03, 0x03, 0x00, 0x7a, 0x02]);
  assert.deepEqual([...sh.subarray(127)], [0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
  assert.deepEqual(sh.subarray(SH_RANDOM_OFF, SH_RANDOM_OFF + 32), seq32(0));
  assert.deepEqual(sh.subarray(SH_SESSION_ID_OFF, SH_SESSION_ID_OFF + 32), seq32(100));
  assert.equal(sh.readUInt16BE(76), 0x1301);
  assert.deepEqual(extensions(sh).map((e) => e.type), [43, 51]);
  const withMore = Buffer.concat([Buffer.alloc(3), sh, Buffer.from([0x17, 0x03, 0x03, 0x00, 0x11])]);
  const r = parseServerHello(withMore, 3, withMore.length - 3);
  assert.ok(r);
  assert.equal(r.consumed, 133);
  assert.equal(r.keyShareOff, SH_KEY_SHARE_OFF);
  assert.deepEqual(r.random, seq32(0));
  assert.deepEqual(r.sessionIdEcho, seq32(100));
  assert.deepEqual(r.keyShare, seq32(50));
  assert.equal(parseServerHello(serverHello(fill(0xff)), 0, 133)!.keyShare[31], 0x7f);
});

test('ServerHello: refuses bad parameters, a short buffer, and the HelloRetryRequest random', () => {
  const p = { random: seq32(0), sessionIdEcho: seq32(1), keyShare: seq32(2) };
  assert.throws(() => buildServerHello(Buffer.alloc(132), 0, p), RangeError);
  assert.throws(() => buildServerHello(Buffer.alloc(133), 0, { ...p, sessionIdEcho: Buffer.alloc(16) }), /sessionIdEcho/);
  const hrr = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');
  assert.throws(() => buildServerHello(Buffer.alloc(133), 0, { ...p, random: hrr }), /HelloRetryRequest/);
  const sh = serverHello();
  hrr.copy(sh, SH_RANDOM_OFF);
  assert.equal(parseServerHello(sh, 0, 133), null, 'a HelloRetryRequest is not a ServerHello');
  assert.equal(parseClientHello(serverHello(), 0, 133), null);
  assert.equal(parseServerHello(hello(), 0, 517), null);
});

test('record header: app data written and read back, TLS 1.3 limits', () => {
  const b = Buffer.alloc(8);
  writeAppDataHeader(b, 1, 300);
  assert.deepEqual([...b.subarray(1, 1 + APP_DATA_HEADER)], [0x17, 0x03, 0x03, 0x01, 0x2c]);
  const ref = { type: 0, length: 0 };
  assert.equal(readRecordHeader(b, 1, 5, ref), ref, 'fills the caller’s record');
  assert.deepEqual(ref, { type: ContentType.AppData, length: 300 });
  for (const n of [17, MAX_CIPHERTEXT]) {
    writeAppDataHeader(b, 0, n);
    assert.deepEqual(readRecordHeader(b, 0, 5), { type: 23, length: n });
  }
  for (const n of [0, 16, MAX_CIPHERTEXT + 1, NaN]) assert.throws(() => writeAppDataHeader(b, 0, n), RangeError);
  assert.throws(() => writeAppDataHeader(b, 4, 100), RangeError);
  const rec = (...h: number[]) => readRecordHeader(Buffer.from(h), 0, h.length);
  assert.equal(rec(0x17, 3, 3, 0x41, 0x01), null, 'over 2^14 + 256');
  assert.equal(rec(0x17, 3, 3, 0, 16), null, 'shorter than an AEAD tag');
  assert.equal(rec(0x17, 3, 1, 0, 17), null);
  assert.deepEqual(rec(0x16, 3, 1, 0x40, 0x00), { type: 22, length: MAX_PLAINTEXT });
  assert.equal(rec(0x16, 3, 3, 0x40, 0x01), null, 'handshake over 2^14');
  assert.equal(rec(0x16, 3, 4, 0, 10), null);
  assert.equal(rec(0x16, 3, 3, 0, 0), null);
  assert.deepEqual(rec(0x14, 3, 3, 0, 1), { type: 20, length: 1 });
  assert.equal(rec(0x14, 3, 3, 0, 2), null);
  assert.deepEqual(rec(0x15, 3, 3, 0, 2), { type: 21, length: 2 });
  assert.equal(rec(0x18, 3, 3, 0, 20), null);
  assert.equal(rec(0x17, 2, 3, 0, 20), null);
  assert.equal(readRecordHeader(Buffer.from([0x17, 3, 3, 0]), 0, 4), null);
  assert.equal(readRecordHeader(Buffer.from([0x17, 3, 3, 0, 20]), 1, 5), null, 'len past the buffer');
});
