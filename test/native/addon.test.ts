// Tests of the native addon against the real kernel, on loopback only. They need root (raw sockets,
// packet capture, TCP_REPAIR) and a built addon (npm run build:native).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import * as path from 'node:path';
import { Capture, HandshakeInfo, loadNative, TX, TX_STRIDE, WatcherEvent } from '../../src/io/native';

const native = loadNative();
const LO = '127.0.0.1';
const LO_U32 = 0x7f000001;
const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

// ---------- helpers ----------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function randomPort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
}

/** RFC 1071 sum over the concatenation of `parts`; 0 means a stored checksum verifies. */
function internetChecksum(parts: Buffer[]): number {
  const all = Buffer.concat(parts);
  let sum = 0;
  for (let i = 0; i + 1 < all.length; i += 2) sum += all.readUInt16BE(i);
  if (all.length % 2) sum += all[all.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface Seg {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Buffer;
  ttl: number;
  dontFragment: boolean;
  protocol: number;
  ipChecksumOk: boolean;
  tcpChecksumOk: boolean;
}

const ipText = (b: Buffer, off: number) => `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;

function parseSegment(pkt: Buffer): Seg {
  assert.equal(pkt[0] >> 4, 4, 'IPv4');
  const ihl = (pkt[0] & 0x0f) * 4;
  const total = pkt.readUInt16BE(2);
  assert.equal(total, pkt.length, 'IP total length matches the captured length');
  const tcp = pkt.subarray(ihl, total);
  const doff = (tcp[12] >> 4) * 4;
  const pseudo = Buffer.alloc(12);
  pkt.copy(pseudo, 0, 12, 20);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(tcp.length, 10);
  return {
    src: ipText(pkt, 12),
    dst: ipText(pkt, 16),
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    flags: tcp[13],
    window: tcp.readUInt16BE(14),
    payload: Buffer.from(tcp.subarray(doff)),
    ttl: pkt[8],
    dontFragment: (pkt.readUInt16BE(6) & 0x4000) !== 0,
    protocol: pkt[9],
    ipChecksumOk: internetChecksum([pkt.subarray(0, ihl)]) === 0,
    tcpChecksumOk: internetChecksum([pseudo, tcp]) === 0,
  };
}

interface Tx {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payload: Buffer;
}

/** Packs segments the way the TypeScript core does: payloads back to back, TX_STRIDE words each. */
function packTx(segs: Tx[]): { data: Buffer; meta: Uint32Array } {
  const data = Buffer.concat(segs.map((s) => s.payload));
  const meta = new Uint32Array(segs.length * TX_STRIDE);
  let off = 0;
  segs.forEach((s, i) => {
    const b = i * TX_STRIDE;
    meta[b + TX.SRC_IP] = s.src;
    meta[b + TX.DST_IP] = s.dst;
    meta[b + TX.SRC_PORT] = s.sport;
    meta[b + TX.DST_PORT] = s.dport;
    meta[b + TX.SEQ] = s.seq;
    meta[b + TX.ACK] = s.ack;
    meta[b + TX.FLAGS] = s.flags;
    meta[b + TX.WINDOW] = s.window;
    meta[b + TX.PAYLOAD_OFF] = off;
    meta[b + TX.PAYLOAD_LEN] = s.payload.length;
    off += s.payload.length;
  });
  return { data, meta };
}

/** A capture on lo that parses everything it sees; always close() it. */
class Recorder {
  readonly segs: Seg[] = [];
  readonly errors: Error[] = [];
  readonly batchSizes: number[] = [];
  /** Every distinct data Buffer and meta array the capture handed over (the addon reuses one of each). */
  readonly dataObjects = new Set<Buffer>();
  readonly metaObjects = new Set<Uint32Array>();
  readonly capture: Capture;

  constructor(filter: string, maxBatch?: number) {
    this.capture = new native.Capture(
      // On lo every packet passes the ring twice (outgoing copy, then incoming), so a burst of 100
      // needs 200 slots; leave room so that the tests check correctness, not ring capacity.
      { device: 'lo', filter, maxBatch, bufferBytes: 64 << 20 },
      (data, meta, count) => {
        // Failures are collected, not thrown: the tests assert that `errors` stays empty.
        // data and meta are only valid during this call: parseSegment copies what it keeps.
        try {
          assert.ok(Buffer.isBuffer(data));
          assert.ok(meta instanceof Uint32Array);
          assert.ok(count >= 1 && meta.length >= count * 2, 'meta holds count (offset, length) pairs');
          this.dataObjects.add(data);
          this.metaObjects.add(meta);
          this.batchSizes.push(count);
          for (let i = 0; i < count; i++) {
            const off = meta[2 * i];
            const len = meta[2 * i + 1];
            assert.ok(off + len <= data.length, 'packet lies inside the batch buffer');
            this.segs.push(parseSegment(data.subarray(off, off + len)));
          }
        } catch (e) {
          this.errors.push(e as Error);
        }
      },
      (err) => this.errors.push(err),
    );
  }

  close(): void {
    this.capture.close();
  }
}

// ---------- mac ----------

test('mac: SipHash-2-4 reference vectors', () => {
  const key = Buffer.from([...Array(16).keys()]);
  const data = Buffer.alloc(15 + 8 + 8);
  for (let i = 0; i < 15; i++) data[i] = i;
  // Range 0: 15 bytes 00..0e, tag at 15. Range 1: empty message, tag at 23.
  native.mac.sign(key, data, new Uint32Array([0, 15, 15, 0, 0, 23]), 2);
  assert.equal(data.subarray(15, 23).toString('hex'), 'e545be4961ca29a1');
  assert.equal(data.subarray(23, 31).toString('hex'), '310e0edd47db6f72');
});

test('mac: sign/verify round trip and tamper detection', () => {
  const key = crypto.randomBytes(16);
  const n = 5;
  const frame = 100;
  const data = crypto.randomBytes(n * frame);
  const meta = new Uint32Array(n * 3);
  for (let i = 0; i < n; i++) {
    // Tag first, authenticated bytes after it, as the frame format lays it out.
    meta[3 * i] = i * frame + 8;
    meta[3 * i + 1] = frame - 8;
    meta[3 * i + 2] = i * frame;
  }
  native.mac.sign(key, data, meta, n);
  const ok = new Uint8Array(n).fill(7);
  native.mac.verify(key, data, meta, n, ok);
  assert.deepEqual([...ok], [1, 1, 1, 1, 1]);

  data[1 * frame + 50] ^= 0x01; // body of frame 1
  data[3 * frame + 2] ^= 0x80; // tag of frame 3
  native.mac.verify(key, data, meta, n, ok);
  assert.deepEqual([...ok], [1, 0, 1, 0, 1]);

  const otherKey = Buffer.from(key);
  otherKey[0] ^= 1;
  native.mac.verify(otherKey, data, meta, n, ok);
  assert.deepEqual([...ok], [0, 0, 0, 0, 0]);

  // count limits the work: entries past it are untouched.
  ok.fill(9);
  native.mac.verify(key, data, meta, 2, ok);
  assert.deepEqual([...ok], [1, 0, 9, 9, 9]);
});

test('mac: rejects bad arguments without touching memory', () => {
  const key = Buffer.alloc(16, 1);
  const data = Buffer.alloc(64);
  const before = Buffer.from(data);
  const ok = new Uint8Array(4);
  const sign = (k: unknown, d: unknown, m: unknown, c: unknown) =>
    (native.mac.sign as (...a: unknown[]) => void)(k, d, m, c);

  assert.throws(() => sign(Buffer.alloc(15), data, new Uint32Array([0, 8, 8]), 1), RangeError);
  assert.throws(() => sign('0123456789abcdef', data, new Uint32Array([0, 8, 8]), 1), TypeError);
  assert.throws(() => sign(key, 'data', new Uint32Array([0, 8, 8]), 1), TypeError);
  assert.throws(() => sign(key, data, [0, 8, 8], 1), TypeError);
  assert.throws(() => sign(key, data, new Uint32Array([0, 8, 8]), 2), RangeError); // count > meta
  assert.throws(() => sign(key, data, new Uint32Array([0, 8, 8]), 1.5), TypeError);
  assert.throws(() => sign(key, data, new Uint32Array([0, 8, 8]), -1), RangeError);
  // A good first record must not be signed when a later one is out of bounds.
  assert.throws(() => sign(key, data, new Uint32Array([0, 8, 8, 60, 8, 0]), 2), /range 1 lies outside/);
  assert.throws(() => sign(key, data, new Uint32Array([0, 8, 57]), 1), /tag 0 lies outside/);
  assert.throws(() => sign(key, data, new Uint32Array([0xffffffff, 2, 0]), 1), RangeError); // no wrap-around
  assert.deepEqual(data, before, 'nothing was written');
  assert.throws(() => native.mac.verify(key, data, new Uint32Array([0, 8, 8, 0, 8, 8]), 2, new Uint8Array(1)), RangeError);
  native.mac.verify(key, data, new Uint32Array(0), 0, ok); // empty batch is fine
});

test('versions() names all three libraries', () => {
  const v = native.versions();
  assert.match(v.pcap, /libpcap/);
  assert.match(v.libnet, /libnet/);
  assert.match(v.sodium, /^\d+\.\d+\.\d+/);
});

// ---------- capture + injector ----------

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
    const meta = new Uint32Array(rows.length * TX_STRIDE);
    rows.forEach(([off, len], i) => {
      meta.set([LO_U32, LO_U32, sport, dport, 1000 + i, 7, len ? PSH | ACK : ACK, 512, off, len], i * TX_STRIDE);
    });
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
    const good = () => new Uint32Array([LO_U32, LO_U32, 1, 2, 0, 0, ACK, 100, 0, 4]);
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

test('capture: a packet longer than snaplen is delivered cut short, headers intact', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const pkts: Buffer[] = [];
  const cap = new native.Capture(
    { device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, snaplen: 1000 },
    (data, meta, count) => {
      for (let i = 0; i < count; i++) pkts.push(Buffer.from(data.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1])));
    },
    () => {},
  );
  const inj = new native.Injector();
  try {
    const big = crypto.randomBytes(3000);
    const small = crypto.randomBytes(10);
    const { data, meta } = packTx([
      { src: LO_U32, dst: LO_U32, sport, dport, seq: 1, ack: 2, flags: PSH | ACK, window: 3, payload: big },
      { src: LO_U32, dst: LO_U32, sport, dport, seq: 3001, ack: 2, flags: PSH | ACK, window: 3, payload: small },
    ]);
    assert.equal(inj.send(data, meta, 2), 2);
    await waitFor(() => pkts.length >= 2, 3000, '2 segments');
    const [cut, whole] = pkts;
    assert.equal(cut.length, 1000 - 14, 'snaplen minus the Ethernet header of lo');
    assert.equal(cut.readUInt16BE(2), 20 + 20 + 3000, 'IP total length still tells the real size');
    assert.equal(cut.readUInt32BE(24), 1, 'seq');
    assert.ok(cut.subarray(40).equals(big.subarray(0, cut.length - 40)), 'payload prefix');
    assert.equal(whole.length, 50);
    assert.ok(whole.subarray(40).equals(small));
    assert.equal(cap.stats().skipped, 0);
  } finally {
    cap.close();
    inj.close();
  }
});

test('capture on "any" strips the cooked (SLL) header', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const segs: Seg[] = [];
  const errors: Error[] = [];
  const cap = new native.Capture(
    { device: 'any', filter: `tcp and src port ${sport} and dst port ${dport}`, bufferBytes: 16 << 20 },
    (data, meta, count) => {
      try {
        for (let i = 0; i < count; i++) segs.push(parseSegment(data.subarray(meta[2 * i], meta[2 * i] + meta[2 * i + 1])));
      } catch (e) {
        errors.push(e as Error);
      }
    },
    (err) => errors.push(err),
  );
  const inj = new native.Injector();
  try {
    const { data, meta } = packTx([
      { src: LO_U32, dst: LO_U32, sport, dport, seq: 5, ack: 6, flags: PSH | ACK, window: 9, payload: Buffer.from('any') },
    ]);
    assert.equal(inj.send(data, meta, 1), 1);
    await waitFor(() => segs.length >= 1 || errors.length > 0, 3000, 'segment on "any"');
    await sleep(50);
    assert.deepEqual(errors, []);
    assert.equal(segs.length, 1, 'seen once although lo shows it outgoing and incoming');
    assert.equal(segs[0].payload.toString(), 'any');
    assert.ok(segs[0].tcpChecksumOk);
  } finally {
    cap.close();
    inj.close();
  }
});

test('capture: one Buffer and one meta array serve every batch; copies taken in the callback stay intact', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const rec = new Recorder(`tcp and src port ${sport} and dst port ${dport}`, 4);
  const inj = new native.Injector();
  try {
    const sent: Buffer[] = [];
    for (let round = 0; round < 10; round++) {
      const segs: Tx[] = [];
      for (let i = 0; i < 20; i++) {
        const k = round * 20 + i;
        // Sizes vary so that every slot of the reused buffer gets overwritten by different bytes.
        const payload = crypto.randomBytes(((k * 211) % 1300) + 1);
        sent.push(payload);
        segs.push({ src: LO_U32, dst: LO_U32, sport, dport, seq: k, ack: 0, flags: PSH | ACK, window: 1, payload });
      }
      const { data, meta } = packTx(segs);
      assert.equal(inj.send(data, meta, segs.length), segs.length);
      await sleep(round % 2 ? 0 : 5);
    }
    await waitFor(() => rec.segs.length >= sent.length || rec.errors.length > 0, 3000, `${sent.length} segments`);
    assert.deepEqual(rec.errors, []);
    assert.equal(rec.segs.length, sent.length);
    rec.segs.forEach((got, k) => {
      assert.equal(got.seq, k);
      assert.ok(got.payload.equals(sent[k]), `payload of ${k}`);
    });
    assert.ok(rec.batchSizes.every((c) => c <= 4), `maxBatch 4 respected: ${rec.batchSizes}`);
    assert.equal(rec.dataObjects.size, 1, 'the same data Buffer every time');
    assert.equal(rec.metaObjects.size, 1, 'the same meta array every time');
  } finally {
    rec.close();
    inj.close();
  }
});

test('capture: big packets end a batch before maxBatch when the batch buffer is full', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  // Default snaplen 65535 and maxBatch 256: the batch buffer is capped at 1 MiB, so 100 packets
  // of 16 KB cannot all go in one batch.
  const rec = new Recorder(`tcp and src port ${sport} and dst port ${dport}`);
  const inj = new native.Injector();
  try {
    const segs: Tx[] = [];
    for (let i = 0; i < 100; i++) {
      segs.push({ src: LO_U32, dst: LO_U32, sport, dport, seq: i, ack: 0, flags: PSH | ACK, window: 1, payload: crypto.randomBytes(16000) });
    }
    const { data, meta } = packTx(segs);
    assert.equal(inj.send(data, meta, segs.length), segs.length);
    await waitFor(() => rec.segs.length >= segs.length || rec.errors.length > 0, 3000, `${segs.length} segments`);
    assert.deepEqual(rec.errors, []);
    rec.segs.forEach((got, i) => assert.ok(got.payload.equals(segs[i].payload), `payload of ${i}`));
    assert.ok(rec.batchSizes.length >= 2 && Math.max(...rec.batchSizes) < 100, `batches: ${rec.batchSizes}`);
    assert.equal(rec.capture.stats().skipped, 0);
  } finally {
    rec.close();
    inj.close();
  }
});

test('capture: nextTick and microtasks queued by onBatch run before the next batch', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const order: string[] = [];
  const cap = new native.Capture(
    { device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, maxBatch: 1 },
    (_data, _meta, count) => {
      order.push(`batch${count}`);
      process.nextTick(() => order.push('tick'));
      void Promise.resolve().then(() => order.push('micro'));
    },
    () => {},
  );
  const inj = new native.Injector();
  try {
    // One synchronous send: all three are in the ring before the loop polls, so one wake-up
    // delivers three batches of one.
    const { data, meta } = packTx(
      [1, 2, 3].map((seq) => ({ src: LO_U32, dst: LO_U32, sport, dport, seq, ack: 0, flags: ACK, window: 1, payload: Buffer.alloc(0) })),
    );
    assert.equal(inj.send(data, meta, 3), 3);
    await waitFor(() => order.length >= 9, 3000, 'three batches and their ticks');
    assert.deepEqual(order, ['batch1', 'tick', 'micro', 'batch1', 'tick', 'micro', 'batch1', 'tick', 'micro']);
  } finally {
    cap.close();
    inj.close();
  }
});

// ---------- socket watcher ----------

function listenOnFreePort(w: ReturnType<typeof newWatcher>['watcher']): { fd: number; port: number } {
  for (let attempt = 0; ; attempt++) {
    const port = randomPort();
    try {
      return { fd: w.listen(LO, port, 16), port };
    } catch (e) {
      if (attempt > 20 || !/Address already in use/.test((e as Error).message)) throw e;
    }
  }
}

function newWatcher() {
  const events: WatcherEvent[] = [];
  const watcher = new native.SocketWatcher((ev) => events.push(ev));
  return { watcher, events };
}

test('watcher: handshake, seq learning, silenced kernel, silent close', async () => {
  const { watcher, events } = newWatcher();
  const inj = new native.Injector();
  let rec: Recorder | null = null;
  let handshake: Recorder | null = null;
  try {
    const { fd: lfd, port } = listenOnFreePort(watcher);
    // Independent check of the learned numbers: the SYN and SYN|ACK as they crossed the wire.
    handshake = new Recorder(`tcp and port ${port} and tcp[tcpflags] & tcp-syn != 0`);
    const cfd = watcher.connect(LO, LO, port);
    await waitFor(() => events.length >= 2, 3000, "'accepted' and 'connected'");
    const acc = events.find((e) => e.type === 'accepted') as Extract<WatcherEvent, { type: 'accepted' }>;
    const con = events.find((e) => e.type === 'connected') as HandshakeInfo & { type: 'connected' };
    assert.ok(acc && con, `got ${JSON.stringify(events)}`);
    assert.equal(acc.listenFd, lfd);
    assert.equal(con.fd, cfd);
    assert.notEqual(acc.fd, cfd);
    assert.equal(acc.localIp, LO_U32);
    assert.equal(acc.localPort, port);
    assert.equal(con.remotePort, port);
    assert.equal(acc.remotePort, con.localPort);
    assert.equal(con.sndNxt, acc.rcvNxt, "client's next seq is what the server expects");
    assert.equal(acc.sndNxt, con.rcvNxt, "server's next seq is what the client expects");
    for (const h of [acc, con]) {
      assert.ok(Number.isInteger(h.sndNxt) && h.sndNxt >= 0 && h.sndNxt <= 0xffffffff);
      assert.ok(h.mss > 0 && h.mss <= 65535, `mss ${h.mss}`);
      assert.ok(h.rcvWscale >= 0 && h.rcvWscale <= 14);
      assert.ok(h.sndWscale >= 0 && h.sndWscale <= 14);
    }
    assert.equal(acc.rcvWscale, con.sndWscale);
    assert.equal(acc.sndWscale, con.rcvWscale);
    await waitFor(() => handshake!.segs.length >= 2, 3000, 'SYN and SYN|ACK');
    const syn = handshake.segs.find((x) => x.flags === SYN);
    const synAck = handshake.segs.find((x) => x.flags === (SYN | ACK));
    assert.ok(syn && synAck, `handshake seen: ${JSON.stringify(handshake.segs.map((x) => x.flags))}`);
    assert.equal(syn.sport, con.localPort);
    assert.equal((syn.seq + 1) >>> 0, con.sndNxt, 'client sndNxt = its ISN + 1');
    assert.equal((synAck.seq + 1) >>> 0, acc.sndNxt, 'server sndNxt = its ISN + 1');
    assert.equal(synAck.ack, con.sndNxt);

    const cport = con.localPort;
    rec = new Recorder(`tcp and port ${port} and port ${cport}`);
    const fromClient = () => rec!.segs.filter((s) => s.sport === cport);
    const fromServer = () => rec!.segs.filter((s) => s.sport === port);

    // Data with exactly the right sequence numbers, in both directions, plus a pure ACK.
    const payload = Buffer.alloc(1000, 0xab);
    const segs: Tx[] = [];
    for (let i = 0; i < 4; i++) {
      segs.push({ src: LO_U32, dst: LO_U32, sport: cport, dport: port, seq: (con.sndNxt + i * 1000) >>> 0,
        ack: con.rcvNxt, flags: PSH | ACK, window: 65535, payload });
      segs.push({ src: LO_U32, dst: LO_U32, sport: port, dport: cport, seq: (acc.sndNxt + i * 1000) >>> 0,
        ack: acc.rcvNxt, flags: PSH | ACK, window: 65535, payload });
    }
    segs.push({ src: LO_U32, dst: LO_U32, sport: cport, dport: port, seq: (con.sndNxt + 4000) >>> 0,
      ack: (con.rcvNxt + 4000) >>> 0, flags: ACK, window: 65535, payload: Buffer.alloc(0) });
    const { data, meta } = packTx(segs);
    assert.equal(inj.send(data, meta, segs.length), segs.length);
    // Positive control: the capture does see the segments we injected.
    await waitFor(() => fromClient().length >= 5 && fromServer().length >= 4, 3000, 'injected segments');
    await sleep(300);
    assert.equal(fromClient().length, 5, 'client kernel sent nothing of its own');
    assert.equal(fromServer().length, 4, 'server kernel sent nothing of its own');

    rec.segs.length = 0;
    watcher.close(acc.fd);
    watcher.close(con.fd);
    watcher.close(lfd);
    watcher.close(lfd); // unknown by now: ignored
    watcher.close(123456);
    await sleep(300);
    assert.deepEqual(rec.segs.map((s) => s.flags), [], 'no FIN or RST, nothing at all, on close');
    assert.deepEqual(rec.errors, []);
    assert.equal(events.length, 2, 'no further events');
  } finally {
    handshake?.close();
    rec?.close();
    watcher.stop();
    inj.close();
  }
});

test('control: the same capture does see a normal close (FIN)', async () => {
  const port = randomPort();
  const server = net.createServer((s) => s.on('data', () => {}).on('end', () => s.end()));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, LO, resolve));
  let rec: Recorder | null = null;
  try {
    const client = net.connect(port, LO);
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    rec = new Recorder(`tcp and port ${port} and port ${client.localPort}`);
    client.end();
    await waitFor(() => rec!.segs.filter((s) => s.flags & FIN).length >= 2, 3000, 'FINs of a normal close');
  } finally {
    rec?.close();
    server.close();
  }
});

test('watcher: refused and unroutable dials arrive as failed events', async () => {
  const { watcher, events } = newWatcher();
  try {
    // Grab a port nobody listens on.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, LO, resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const fd = watcher.connect('', LO, port);
    await waitFor(() => events.length >= 1, 3000, "'failed'");
    assert.deepEqual(events[0], { type: 'failed', fd, errno: 111, error: 'Connection refused' });
    watcher.close(fd);

    // connect() to a multicast address fails inside connect() itself, before anything is sent.
    const fd2 = watcher.connect('', '224.0.0.1', 80);
    await waitFor(() => events.length >= 2, 3000, "second 'failed'");
    assert.deepEqual(events[1], { type: 'failed', fd: fd2, errno: 101, error: 'Network is unreachable' });
    watcher.close(fd2);
  } finally {
    watcher.stop();
  }
});

test('watcher: events for a socket closed before delivery are dropped', async () => {
  const { watcher, events } = newWatcher();
  try {
    const { fd: lfd, port } = listenOnFreePort(watcher);
    const cfd = watcher.connect(LO, LO, port);
    // Hold the JS thread so the worker completes both handshakes and queues both events, then
    // close the sockets before the events can be delivered.
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // busy wait on purpose
    }
    watcher.close(cfd);
    watcher.close(lfd);
    await sleep(300);
    assert.equal(events.length, 0, `no events about closed sockets, got ${JSON.stringify(events)}`);
    // The orphaned accepted socket was closed too: the port can be listened on again at once, and a
    // dial to it is accepted by the new listener.
    const lfd2 = watcher.listen(LO, port, 4);
    const cfd2 = watcher.connect(LO, LO, port);
    await waitFor(() => events.length >= 2, 3000, 'events from the new pair');
    assert.deepEqual(events.map((e) => e.type).sort(), ['accepted', 'connected']);
    const acc = events.find((e) => e.type === 'accepted') as Extract<WatcherEvent, { type: 'accepted' }>;
    assert.equal(acc.listenFd, lfd2);
    assert.equal(events.find((e) => e.type === 'connected')!.fd, cfd2);
  } finally {
    watcher.stop();
  }
});

test('watcher: clear errors and argument checks', () => {
  const { watcher } = newWatcher();
  const w = watcher as unknown as Record<string, (...a: unknown[]) => unknown>;
  try {
    const { port } = listenOnFreePort(watcher);
    assert.throws(() => watcher.listen(LO, port, 16), { message: `listen ${LO}:${port}: Address already in use` });
    assert.throws(() => watcher.listen('', port, 16), /^Error: listen 0\.0\.0\.0:\d+: Address already in use$/);
    assert.throws(() => w.listen('not-an-ip', 1, 1), TypeError);
    assert.throws(() => w.listen(LO, 70000, 1), RangeError);
    assert.throws(() => w.listen(LO, 1, 0), RangeError);
    assert.throws(() => w.listen(LO), TypeError);
    assert.throws(() => w.connect(LO, '', 80), TypeError);
    assert.throws(() => w.connect(LO, LO, 0), RangeError);
    assert.throws(() => w.connect('10.255.255.1', LO, 80), /bind 10\.255\.255\.1: Cannot assign requested address/);
    assert.throws(() => w.close('3'), TypeError);
  } finally {
    watcher.stop();
  }
  watcher.stop(); // idempotent
  watcher.close(5); // ignored after stop
  assert.throws(() => watcher.listen(LO, 0, 1), /stopped/);
  assert.throws(() => new (native.SocketWatcher as unknown as new (x: unknown) => unknown)(42), TypeError);
});

// ---------- errors ----------

test('capture: clear errors', () => {
  const noop = () => {};
  assert.throws(() => new native.Capture({ device: 'rsock-nope0', filter: '' }, noop, noop), /no such device/);
  assert.throws(
    () => new native.Capture({ device: 'lo', filter: 'tcp and port' }, noop, noop),
    /^Error: bad capture filter "tcp and port": .*syntax error/,
  );
  assert.throws(() => new native.Capture({ device: 'lo', filter: 'tcp port 99999' }, noop, noop), /bad capture filter.*port/);
  const C = native.Capture as unknown as new (...a: unknown[]) => Capture;
  assert.throws(() => new C(), TypeError);
  assert.throws(() => new C({ device: 'lo' }, noop, noop), /opts\.filter must be a string/);
  assert.throws(() => new C({ device: 'lo', filter: '', maxBatch: 0 }, noop, noop), RangeError);
  assert.throws(() => new C({ device: 'lo', filter: '', snaplen: 1.5 }, noop, noop), TypeError);
  assert.throws(() => new C({ device: 'lo', filter: '', inboundOnly: 1 }, noop, noop), TypeError);
  assert.throws(() => new C({ device: 'lo', filter: '' }, noop), /onError must be a function/);
});

test('capture: close is idempotent and stats survive it', () => {
  const c = new native.Capture({ device: 'lo', filter: 'tcp port 9' }, () => {}, () => {});
  c.close();
  c.close();
  assert.deepEqual(c.stats(), { delivered: 0, batches: 0, dropped: 0, ifDropped: 0, skipped: 0 });
});

// ---------- process lifetime ----------

function runChild(body: string, timeoutMs = 10000, wrapper: string[] = []) {
  const addon = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'rsock_native.node');
  const script = `const n = require(${JSON.stringify(addon)});\n${body}`;
  const started = Date.now();
  const argv = [...wrapper, process.execPath, '-e', script];
  const r = spawnSync(argv[0], argv.slice(1), { timeout: timeoutMs, encoding: 'utf8' });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

test('lifetime: closed or idle handles do not keep the process alive; exit with open handles is clean', () => {
  // A closed capture and an idle watcher let the process end by itself.
  let r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp port 9' }, () => {}, () => {});
    c.close();
    const w = new n.SocketWatcher(() => {});
    const inj = new n.Injector();
    console.log('ok');`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');

  // process.exit() with everything open, a listener, a pending dial and a capture mid-stream.
  r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp' }, () => {}, () => {});
    const w = new n.SocketWatcher(() => {});
    const lfd = w.listen('127.0.0.1', 0, 8);
    w.connect('', '127.0.0.1', 9);
    const inj = new n.Injector();
    const meta = new Uint32Array([0x7f000001, 0x7f000001, 1, 9, 0, 0, 16, 100, 0, 0]);
    setTimeout(() => { inj.send(Buffer.alloc(0), meta, 1); process.exit(3); }, 50);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 3, r.stderr);

  // An open capture is a live I/O source: it keeps the process alive until closed.
  r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp port 9' }, () => {}, () => {});
    setTimeout(() => { console.log('still alive'); c.close(); }, 300);`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'still alive');
});

test('lifetime: close() from inside onBatch releases the loop; a collected capture is harmless', () => {
  const r = runChild(`
    const gc = require('vm').runInNewContext('gc', Object.assign(require('v8').setFlagsFromString('--expose-gc') || {}));
    let seen = 0;
    let c = new n.Capture({ device: 'lo', filter: 'tcp and dst port 9' }, (data, meta, count) => {
      seen += count;
      c.close();
      c.close();
    }, () => {});
    const inj = new n.Injector();
    inj.send(Buffer.alloc(0), new Uint32Array([0x7f000001, 0x7f000001, 1, 9, 0, 0, 16, 100, 0, 0]), 1);
    inj.close();
    process.on('exit', () => console.log('exit seen=' + seen));
    setTimeout(() => { c = null; gc(); gc(); }, 50);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'exit seen=1');
});

test('lifetime: a capture left open in a worker thread does not stop the worker from ending', () => {
  const r = runChild(`
    const { Worker } = require('worker_threads');
    const w = new Worker(\`
      const n = require(\${JSON.stringify(require.resolve(${JSON.stringify(path.join(__dirname, '..', '..', '..', 'build', 'Release', 'rsock_native.node'))}))});
      const { parentPort } = require('worker_threads');
      const c = new n.Capture({ device: 'lo', filter: 'tcp and dst port 9' }, () => parentPort.postMessage('batch'), () => {});
      const inj = new n.Injector();
      inj.send(Buffer.alloc(0), new Uint32Array([0x7f000001, 0x7f000001, 1, 9, 0, 0, 16, 100, 0, 0]), 1);
    \`, { eval: true });
    w.on('message', (m) => { console.log(m); w.terminate(); });
    w.on('exit', () => console.log('worker ended'));`);
  assert.equal(r.signal, null, `child hung or crashed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'batch\nworker ended');
});

test('lifetime: a capture rides out its interface going down; one that goes away is reported once and released', (t) => {
  if (spawnSync('unshare', ['--version']).status !== 0 || spawnSync('ip', ['-V']).status !== 0) {
    t.skip('unshare or ip is missing');
    return;
  }
  // In a private network namespace: a veth whose far end has no address, so datagrams to a fixed
  // neighbour leave through the captured side.
  const r = runChild(
    `
    const { execSync } = require('child_process');
    const sh = (cmd) => execSync(cmd, { stdio: 'inherit' });
    const neigh = 'ip neigh replace 10.9.0.3 lladdr 02:00:00:00:00:01 dev rsockcap0';
    sh('ip link add rsockcap0 type veth peer name rsockcap1 && ip addr add 10.9.0.1/24 dev rsockcap0' +
       ' && ip link set rsockcap0 up && ip link set rsockcap1 up && ' + neigh);
    const log = [];
    const c = new n.Capture({ device: 'rsockcap0', filter: 'udp and dst port 7777', inboundOnly: false },
      (data, meta, count) => log.push('batch ' + count), (e) => log.push(e.message));
    const s = require('dgram').createSocket('udp4');
    const send = () => s.send('x', 7777, '10.9.0.3');
    const steps = [
      send,
      () => sh('ip link set rsockcap0 down'),
      () => sh('ip link set rsockcap0 up && ' + neigh),
      send,
      () => { s.close(); sh('ip link del rsockcap0'); },
    ];
    steps.forEach((f, i) => setTimeout(f, 100 + 150 * i));
    // Nothing is left to keep the loop alive once the capture has reported its end.
    process.on('exit', () => { console.log(JSON.stringify(log)); c.close(); });`,
    10000,
    ['unshare', '--net', '--'],
  );
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ['batch 1', 'batch 1', 'capture on "rsockcap0": The interface disappeared']);
});

test('lifetime: a throwing batch callback surfaces as an uncaught exception', () => {
  const r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp and dst port 9' }, () => { throw new Error('boom from onBatch'); }, () => {});
    const inj = new n.Injector();
    inj.send(Buffer.alloc(0), new Uint32Array([0x7f000001, 0x7f000001, 1, 9, 0, 0, 16, 100, 0, 0]), 1);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /boom from onBatch/);
});

test('without privileges: errors name the missing capability', (t) => {
  if (spawnSync('setpriv', ['--version']).status !== 0) {
    t.skip('setpriv (util-linux) is not installed');
    return;
  }
  const r = runChild(
    `
    const tryIt = (f) => { try { f(); return 'no error'; } catch (e) { return e.message; } };
    const w = new n.SocketWatcher(() => {});
    console.log(JSON.stringify([
      tryIt(() => new n.Injector()),
      tryIt(() => new n.Capture({ device: 'lo', filter: '' }, () => {}, () => {})),
      tryIt(() => w.listen('127.0.0.1', 0, 1)),
      tryIt(() => w.connect('', '127.0.0.1', 9)),
    ]));
    w.stop();`,
    10000,
    ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'],
  );
  assert.equal(r.status, 0, r.stderr);
  const [inj, cap, listen, connect] = JSON.parse(r.stdout) as string[];
  assert.match(inj, /^Injector: .*needs CAP_NET_RAW/);
  assert.match(cap, /^capture on "lo": permission denied: .*needs CAP_NET_RAW/);
  assert.match(listen, /^listen 127\.0\.0\.1:0: TCP_REPAIR is not permitted: .*needs CAP_NET_ADMIN/);
  assert.match(connect, /^connect 127\.0\.0\.1:9: TCP_REPAIR is not permitted: .*needs CAP_NET_ADMIN/);
});
