// The injector: segments built from TX records, checked by capturing them on lo. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { TX } from '../../src/io/native';
import {
  native, LO, LO_U32, PSH, ACK, sleep, waitFor, randomPort, Tx, txMeta, packTx, Recorder, payload,
} from './helpers';

test('injector batch is captured intact on lo, with valid checksums', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const n = 100;
  const segs: Tx[] = [];
  for (let i = 0; i < n; i++) {
    const len = i % 10 === 0 ? 0 : (i * 37) % 1400 + 1;
    segs.push({
      src: LO_U32,
      dst: LO_U32,
      sport,
      dport,
      seq: (0xfffff000 + i * 1000) >>> 0, // wraps past 2^32 on purpose
      ack: (0x80000000 + i) >>> 0,
      flags: i % 10 === 0 ? ACK : PSH | ACK,
      window: (65535 - i) & 0xffff,
      payload: crypto.randomBytes(len),
    });
  }
  // The kernel answers these with RSTs from dport to sport; the filter leaves them out.
  const rec = new Recorder(`tcp and src port ${sport} and dst port ${dport}`, 32);
  const inj = new native.Injector();
  try {
    const { data, meta } = packTx(segs);
    assert.equal(inj.send(data, meta, n), n);
    await waitFor(() => rec.segs.length >= n || rec.errors.length > 0, 3000, `${n} captured segments`);
    assert.deepEqual(rec.errors, []);
    await sleep(50); // anything extra would show up now
    assert.equal(rec.segs.length, n);
    rec.segs.forEach((got, i) => {
      const want = segs[i];
      assert.equal(got.src, LO);
      assert.equal(got.dst, LO);
      assert.equal(got.protocol, 6);
      assert.equal(got.ttl, 64);
      assert.ok(got.dontFragment, 'DF set');
      assert.equal(got.sport, sport);
      assert.equal(got.dport, dport);
      assert.equal(got.seq, want.seq, `seq of ${i}`);
      assert.equal(got.ack, want.ack, `ack of ${i}`);
      assert.equal(got.flags, want.flags, `flags of ${i}`);
      assert.equal(got.window, want.window, `window of ${i}`);
      assert.ok(got.payload.equals(want.payload), `payload of ${i}`);
      assert.ok(got.ipChecksumOk, `IP checksum of ${i}`);
      assert.ok(got.tcpChecksumOk, `TCP checksum of ${i}`);
    });
    assert.ok(rec.batchSizes.every((c) => c >= 1 && c <= 32), `batches within maxBatch: ${rec.batchSizes}`);
    const s = rec.capture.stats();
    assert.equal(s.delivered, n);
    assert.equal(s.batches, rec.batchSizes.length);
    assert.equal(s.skipped, 0);
    assert.equal(s.dropped, 0);
    assert.deepEqual(inj.stats(), { sent: n, errors: 0, lastError: '' });
    assert.deepEqual(rec.errors, []);
  } finally {
    rec.close();
    inj.close();
  }
});

test('injector: payload offsets into a shared buffer, runs of empty payloads, empty batches', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const rec = new Recorder(`tcp and src port ${sport} and dst port ${dport}`);
  const inj = new native.Injector();
  try {
    const data = Buffer.from('....hello....world');
    const rows: Array<[number, number]> = [[13, 5], [0, 0], [0, 0], [4, 5], [4, 0], [0, 18]];
    const meta = txMeta(
      rows.map(([off, len], i) => ({
        src: LO_U32, dst: LO_U32, sport, dport, seq: 1000 + i, ack: 7, flags: len ? PSH | ACK : ACK, window: 512, off, len,
      })),
    );
    assert.equal(inj.send(data, meta, 0), 0);
    assert.equal(inj.send(data, meta, rows.length), rows.length);
    await waitFor(() => rec.segs.length >= rows.length, 3000, `${rows.length} captured segments`);
    assert.deepEqual(
      rec.segs.map((s) => s.payload.toString()),
      ['world', '', '', 'hello', '', '....hello....world'],
    );
    assert.deepEqual(rec.segs.map((s) => s.seq), [1000, 1001, 1002, 1003, 1004, 1005]);
    assert.ok(rec.segs.every((s) => s.tcpChecksumOk && s.ipChecksumOk));
  } finally {
    rec.close();
    inj.close();
  }
});

test('injector: rejects bad batches before sending anything', () => {
  const inj = new native.Injector();
  try {
    const send = (d: unknown, m: unknown, c: unknown) => (inj.send as (...a: unknown[]) => number)(d, m, c);
    const good = () => txMeta([{ src: LO_U32, dst: LO_U32, sport: 1, dport: 2, seq: 0, ack: 0, flags: ACK, window: 100, off: 0, len: 4 }]);
    const data = Buffer.alloc(4);
    assert.throws(() => send('x', good(), 1), TypeError);
    assert.throws(() => send(data, new Int32Array(10), 1), TypeError);
    assert.throws(() => send(data, good(), 2), RangeError); // more records than meta holds
    const bad = (word: number, value: number) => {
      const m = good();
      m[word] = value;
      return m;
    };
    assert.throws(() => send(data, bad(TX.SRC_PORT, 65536), 1), /port out of range/);
    assert.throws(() => send(data, bad(TX.FLAGS, 256), 1), /flags/);
    assert.throws(() => send(data, bad(TX.WINDOW, 70000), 1), /window/);
    assert.throws(() => send(data, bad(TX.PAYLOAD_OFF, 1), 1), /payload range outside data/);
    assert.throws(() => send(data, bad(TX.PAYLOAD_OFF, 0xffffffff), 1), /payload range outside data/);
    assert.equal(inj.stats().sent, 0);
  } finally {
    inj.close();
  }
  inj.close(); // idempotent
  assert.throws(() => inj.send(Buffer.alloc(0), new Uint32Array(0), 0), /closed/);
});
