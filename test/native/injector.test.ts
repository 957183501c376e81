// The injector: segments built from TX records, checked by capturing them on lo, and by tshark as an
// independent dissector and checksum checker. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TX, TX_OPT_TIMESTAMP } from '../../src/io/native';
import {
  native, LO, LO_U32, PSH, ACK, sleep, waitFor, randomPort, Tx, txMeta, packTx, Recorder, capturedPackets,
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
    assert.throws(() => send(data, bad(TX.TTL, 256), 1), /TTL must be at most 255/);
    assert.throws(() => send(data, bad(TX.IP_ID, 0x10000), 1), /IP_ID must fit in 16 bits/);
    assert.throws(() => send(data, bad(TX.OPTIONS, 2), 1), /unknown OPTIONS bits/);
    assert.throws(() => send(data, bad(TX.OPTIONS, 0x80000001), 1), /unknown OPTIONS bits/);
    // The largest payload shrinks by the 12 option bytes when the timestamp option is on.
    const big = Buffer.alloc(65535 - 40);
    const at = (len: number, options: number) => {
      const m = good();
      m[TX.PAYLOAD_LEN] = len;
      m[TX.OPTIONS] = options;
      return m;
    };
    assert.throws(() => send(big, at(65535 - 40 + 1, 0), 1), /payload longer than an IP packet can carry/);
    assert.throws(() => send(big, at(65535 - 52 + 1, TX_OPT_TIMESTAMP), 1), /payload longer/);
    // A later bad record stops the whole batch: nothing at all was sent.
    const two = new Uint32Array([...good(), ...bad(TX.TTL, 300)]);
    assert.throws(() => send(data, two, 2), /packet 1: TTL/);
    assert.equal(inj.stats().sent, 0);
  } finally {
    inj.close();
  }
  inj.close(); // idempotent
  assert.throws(() => inj.send(Buffer.alloc(0), new Uint32Array(0), 0), /closed/);
});

/** Segments that vary every new field: timestamp option on and off, IP ids, TTLs, odd and even lengths. */
function fidelitySegments(sport: number, dport: number, n: number): Tx[] {
  const segs: Tx[] = [];
  for (let i = 0; i < n; i++) {
    const ts = i % 3 !== 2;
    segs.push({
      src: LO_U32, dst: LO_U32, sport, dport,
      seq: crypto.randomInt(0, 2 ** 32), ack: crypto.randomInt(0, 2 ** 32),
      flags: i % 7 === 0 ? ACK : PSH | ACK,
      window: crypto.randomInt(0, 65536),
      payload: crypto.randomBytes(i % 7 === 0 ? 0 : crypto.randomInt(1, 1460)),
      options: ts ? TX_OPT_TIMESTAMP : 0,
      // Extremes included: 0 and all ones are values like any other on the wire.
      tsVal: i === 0 ? 0 : i === 1 ? 0xffffffff : crypto.randomInt(0, 2 ** 32),
      tsEcr: i === 0 ? 0xffffffff : i === 1 ? 0 : crypto.randomInt(0, 2 ** 32),
      ipId: i % 5 === 4 ? 0 : crypto.randomInt(1, 0x10000),
      ttl: [0, 1, 64, 128, 255][i % 5],
    });
  }
  return segs;
}

test('injector: timestamp option, IP id and TTL as the records say; DF; checksums; over several sendmmsg chunks', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const n = 300; // more than one 64-message chunk, with a partial last one
  const segs = fidelitySegments(sport, dport, n);
  const rec = new Recorder(`tcp and src port ${sport} and dst port ${dport}`);
  const inj = new native.Injector();
  try {
    const { data, meta } = packTx(segs);
    assert.equal(inj.send(data, meta, n), n);
    await waitFor(() => rec.segs.length >= n || rec.errors.length > 0, 5000, `${n} captured segments`);
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.segs.length, n);
    rec.segs.forEach((got, i) => {
      const want = segs[i];
      const what = `segment ${i}`;
      if (want.options) {
        // Byte for byte what Linux sends: NOP, NOP, kind 8, length 10, TSval, TSecr.
        const opt = Buffer.alloc(12);
        opt.set([1, 1, 8, 10]);
        opt.writeUInt32BE(want.tsVal!, 4);
        opt.writeUInt32BE(want.tsEcr!, 8);
        assert.deepEqual(got.tcpOptions, opt, what);
        assert.deepEqual(got.ts, { val: want.tsVal, ecr: want.tsEcr }, what);
      } else {
        assert.equal(got.tcpOptions.length, 0, `${what}: no options`);
        assert.equal(got.ts, null, what);
      }
      if (want.ipId) assert.equal(got.ipId, want.ipId, `${what}: IP id`);
      assert.equal(got.ttl, want.ttl || 64, `${what}: TTL`);
      assert.ok(got.dontFragment, `${what}: DF`);
      assert.deepEqual([got.seq, got.ack, got.flags, got.window], [want.seq, want.ack, want.flags, want.window], what);
      assert.ok(got.payload.equals(want.payload), `${what}: payload`);
      assert.ok(got.ipChecksumOk && got.tcpChecksumOk, `${what}: checksums`);
    });
    assert.deepEqual(inj.stats(), { sent: n, errors: 0, lastError: '' });
  } finally {
    rec.close();
    inj.close();
  }
});

/** A pcap file of raw IPv4 packets (link type 101), for tshark. */
function writePcap(file: string, pkts: Buffer[]): void {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(101, 20);
  const parts: Buffer[] = [head];
  for (const p of pkts) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(p.length, 8);
    rec.writeUInt32LE(p.length, 12);
    parts.push(rec, p);
  }
  fs.writeFileSync(file, Buffer.concat(parts));
}

test('injector: tshark dissects the segments as sent and finds every IP and TCP checksum good', async (t) => {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
  } catch {
    t.skip('tshark is not installed (apt-get install tshark)');
    return;
  }
  const sport = randomPort();
  const dport = sport + 1;
  const n = 150;
  const segs = fidelitySegments(sport, dport, n);
  const pkts: Buffer[] = [];
  const errors: Error[] = [];
  const cap = new native.Capture(
    { device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, bufferBytes: 64 << 20 },
    (data, meta, count) => {
      for (const p of capturedPackets(data, meta, count)) pkts.push(Buffer.from(p));
    },
    (err) => errors.push(err),
  );
  const inj = new native.Injector();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsock-inject-'));
  try {
    const { data, meta } = packTx(segs);
    assert.equal(inj.send(data, meta, n), n);
    await waitFor(() => pkts.length >= n || errors.length > 0, 5000, `${n} captured segments`);
    assert.deepEqual(errors, []);
    const file = path.join(dir, 'inject.pcap');
    // Negative control: the same first packet once more with a TCP checksum one off must read as bad.
    const broken = Buffer.from(pkts[0]);
    broken.writeUInt16BE(broken.readUInt16BE(20 + 16) ^ 1, 20 + 16);
    writePcap(file, [...pkts, broken]);
    const fields = ['ip.flags.df', 'ip.ttl', 'ip.id', 'ip.checksum.status', 'tcp.checksum.status', 'tcp.hdr_len',
      'tcp.options.timestamp.tsval', 'tcp.options.timestamp.tsecr', 'tcp.len'];
    const out = execFileSync('tshark', ['-r', file, '-n', '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE',
      '-o', 'tcp.relative_sequence_numbers:FALSE', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trim().split('\n').map((l) => l.split('|'));
    assert.equal(rows.length, n + 1);
    // tshark's checksum status: 1 good, 0 bad, 2 unverified.
    assert.deepEqual(rows.pop()!.slice(3, 5), ['1', '0'], 'the broken copy: IP good, TCP bad');
    rows.forEach(([df, ttl, id, ipSum, tcpSum, hdrLen, tsval, tsecr, len], i) => {
      const want = segs[i];
      const what = `tshark, segment ${i}: ${rows[i].join('|')}`;
      assert.equal(df, '1', what);
      assert.equal(Number(ttl), want.ttl || 64, what);
      if (want.ipId) assert.equal(Number(id), want.ipId, what);
      assert.equal(ipSum, '1', `${what}: IP checksum good`);
      assert.equal(tcpSum, '1', `${what}: TCP checksum good`);
      assert.equal(Number(hdrLen), want.options ? 32 : 20, what);
      assert.equal(tsval, want.options ? String(want.tsVal) : '', what);
      assert.equal(tsecr, want.options ? String(want.tsEcr) : '', what);
      assert.equal(Number(len), want.payload.length, what);
    });
  } finally {
    cap.close();
    inj.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
