// The capture: what a batch holds, how batches are cut and delivered, and its errors. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { Capture } from '../../src/io/native';
import {
  native, LO_U32, PSH, ACK, sleep, waitFor, randomPort, Seg, parseSegment, Tx, packTx, capturedPackets, Recorder, payload,
  runChild,
} from './helpers';
import { CAPTURE, CAPTURE_STRIDE } from '../../src/io/native';

test('capture: a packet longer than snaplen is delivered cut short, headers intact', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const pkts: Buffer[] = [];
  const cap = new native.Capture(
    { device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, snaplen: 1000 },
    (data, meta, count) => {
      for (const p of capturedPackets(data, meta, count)) pkts.push(Buffer.from(p));
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
        for (const p of capturedPackets(data, meta, count)) segs.push(parseSegment(p));
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

const seg = (sport: number, dport: number, seq: number, size = 1): Tx =>
  ({ src: LO_U32, dst: LO_U32, sport, dport, seq, ack: 0, flags: ACK, window: 1, payload: Buffer.alloc(size, seq) });

test('capture: the kernel filter passes only matching segments; inbound only sees each once, both directions twice', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const filter = `tcp and src port ${sport} and dst port ${dport}`;
  const open = (inboundOnly: boolean, into: Seg[]) => new native.Capture({ device: 'lo', filter, inboundOnly }, (data, meta, count) => {
    for (const p of capturedPackets(data, meta, count)) into.push(parseSegment(p));
  }, () => {});
  const inbound: Seg[] = [];
  const both: Seg[] = [];
  const a = open(true, inbound);
  const b = open(false, both);
  const inj = new native.Injector();
  try {
    // Wrong source port, neighbouring ports, then the one that matches. (Not swapped ports: the
    // kernel's RST to that one would match.)
    const { data, meta } = packTx([seg(dport, dport, 1), seg(sport, dport + 1, 2), seg(sport + 1, dport, 3), seg(sport, dport, 4)]);
    assert.equal(inj.send(data, meta, 4), 4);
    await waitFor(() => both.length >= 2, 3000, 'both copies on lo');
    await sleep(50);
    assert.deepEqual(inbound.map((s) => s.seq), [4]);
    assert.deepEqual(both.map((s) => s.seq), [4, 4], 'lo shows it outgoing, then incoming');
    assert.deepEqual([a.stats().delivered, a.stats().skipped, b.stats().delivered], [1, 0, 2]);
  } finally {
    a.close();
    b.close();
    inj.close();
  }
});

test('capture: what the full receive buffer drops is counted; the count survives reading it and close()', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  let delivered = 0;
  const cap = new native.Capture({ device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, bufferBytes: 64 << 10 },
    (_data, _meta, count) => { delivered += count; }, () => {});
  const inj = new native.Injector();
  try {
    // One synchronous send: all of it reaches the socket before the loop reads any, far more than 64 KiB.
    const n = 400;
    const { data, meta } = packTx(Array.from({ length: n }, (_, i) => seg(sport, dport, i, 1000)));
    assert.equal(inj.send(data, meta, n), n);
    await waitFor(() => delivered + cap.stats().dropped >= n, 3000, 'every segment delivered or dropped');
    await sleep(50);
    const s = cap.stats();
    assert.ok(s.dropped > 0 && s.delivered > 0, `dropped ${s.dropped}, delivered ${s.delivered}`);
    assert.equal(s.delivered, delivered);
    assert.equal(s.delivered + s.dropped, n);
    assert.equal(cap.stats().dropped, s.dropped, 'the kernel resets its counter when read; ours does not');
    cap.close();
    assert.equal(cap.stats().dropped, s.dropped);
  } finally {
    cap.close();
    inj.close();
  }
});

test('capture: a burst is cut at maxBatch, records packed back to back; small packets fill a batch past one recvmmsg', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const filter = `tcp and src port ${sport} and dst port ${dport}`;
  const errors: string[] = [];
  const open = (maxBatch: number | undefined, sizes: number[]) => new native.Capture({ device: 'lo', filter, maxBatch }, (data, meta, count) => {
    sizes.push(count);
    let next = 0;
    for (let i = 0; i < count; i++) {
      const off = meta[i * CAPTURE_STRIDE + CAPTURE.OFFSET];
      if (off !== next) errors.push(`batch ${sizes.length}, packet ${i}: offset ${off}, expected ${next}`);
      const len = meta[i * CAPTURE_STRIDE + CAPTURE.LENGTH];
      if (data.readUInt16BE(off + 2) !== len) errors.push(`batch ${sizes.length}, packet ${i}: length ${len}`);
      next = off + len;
    }
  }, (e) => errors.push(e.message));
  const by32: number[] = [];
  const byDefault: number[] = [];
  const a = open(32, by32);
  // Default snaplen 65535: one recvmmsg takes at most 16 packets into the 1 MiB batch buffer.
  const b = open(undefined, byDefault);
  const inj = new native.Injector();
  try {
    const n = 100;
    const { data, meta } = packTx(Array.from({ length: n }, (_, i) => seg(sport, dport, i, 1 + (i % 7) * 50)));
    assert.equal(inj.send(data, meta, n), n);
    await waitFor(() => a.stats().delivered >= n && b.stats().delivered >= n, 3000, 'the burst');
    assert.deepEqual(errors, []);
    assert.deepEqual(by32, [32, 32, 32, 4]);
    assert.deepEqual(byDefault, [100]);
  } finally {
    a.close();
    b.close();
    inj.close();
  }
});

test('capture on a device without a link header (tun): cooked, IPv4 and IPv6, filtered in the kernel', (t) => {
  for (const tool of ['unshare', 'ip', 'socat']) {
    if (spawnSync(tool, ['-V']).error) return t.skip(`${tool} is missing`);
  }
  // In a private network namespace: socat writes each chunk of its stdin into a tun device, where
  // the kernel receives it as an incoming packet.
  const r = runChild(
    `
    const { execSync, spawn } = require('child_process');
    const socat = spawn('socat', ['-u', 'STDIN', 'TUN:10.8.0.1/24,tun-name=rsocktun0,tun-type=tun,iff-no-pi,iff-up'], { stdio: ['pipe', 'ignore', 'inherit'] });
    const up = () => { try { execSync('ip link show rsocktun0', { stdio: 'ignore' }); return true; } catch { return false; } };
    const got = [];
    const tcp = (dport) => { const h = Buffer.alloc(20); h.writeUInt16BE(5555, 0); h.writeUInt16BE(dport, 2); h[12] = 0x50; h[13] = 0x10; return h; };
    const v4 = (dport) => { const ip = Buffer.alloc(20); ip[0] = 0x45; ip.writeUInt16BE(40, 2); ip[8] = 64; ip[9] = 6;
      Buffer.from([10, 8, 0, 2, 10, 8, 0, 1]).copy(ip, 12); return Buffer.concat([ip, tcp(dport)]); };
    const v6 = (dport) => { const ip = Buffer.alloc(40); ip[0] = 0x60; ip.writeUInt16BE(20, 4); ip[6] = 6; ip[7] = 64;
      ip[23] = 2; ip[39] = 1; return Buffer.concat([ip, tcp(dport)]); };
    let tries = 0;
    const start = () => {
      if (!up()) return ++tries < 100 ? setTimeout(start, 20) : (console.log('no tun'), socat.kill());
      const c = new n.Capture({ device: 'rsocktun0', filter: 'tcp and dst port 7777' }, (data, meta, count) => {
        for (let i = 0; i < count; i++) { const off = meta[2 * i], len = meta[2 * i + 1]; got.push([data[off] >> 4, len, data.readUInt16BE(off + len - 18)]); }
      }, (e) => got.push(e.message));
      // One packet per write, apart in time, so that socat reads them one by one.
      const pkts = [v4(7778), v4(7777), v6(7778), v6(7777)];
      pkts.forEach((p, i) => setTimeout(() => socat.stdin.write(p), 50 * (i + 1)));
      setTimeout(() => { console.log(JSON.stringify({ got, stats: c.stats() })); c.close(); socat.kill(); }, 50 * pkts.length + 300);
    };
    start();`,
    10000,
    ['unshare', '--net', '--'],
  );
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { got: unknown[]; stats: { delivered: number; skipped: number } };
  assert.deepEqual(out.got, [[4, 40, 7777], [6, 60, 7777]], 'IP at offset 0, only dst port 7777');
  assert.equal(out.stats.skipped, 0);
});

test('capture: onBatch may detach the arrays; the next batch of the same wake-up gets new ones, and the moved memory is left alone', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const got: Seg[] = [];
  const errors: Error[] = [];
  const datas: Buffer[] = [];
  let moved: ArrayBufferLike | null = null;
  let snapshot: Buffer | null = null;
  const cap = new native.Capture({ device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, maxBatch: 4, bufferBytes: 64 << 20 },
    (data, meta, count) => {
      try {
        datas.push(data);
        for (const pkt of capturedPackets(data, meta, count)) got.push(parseSegment(pkt));
        if (!moved) {
          // Transfer the batch Buffer's memory away while more of the burst waits in the socket.
          const m = structuredClone(data.buffer, { transfer: [data.buffer] });
          moved = m;
          snapshot = Buffer.from(m);
          assert.equal(data.length, 0);
        }
      } catch (e) {
        errors.push(e as Error);
      }
    }, (err) => errors.push(err));
  const inj = new native.Injector();
  try {
    const sent = Array.from({ length: 20 }, (_, k) => crypto.randomBytes(100 + k));
    const { data, meta } = packTx(sent.map((p, k) => ({ src: LO_U32, dst: LO_U32, sport, dport, seq: k, ack: 0, flags: PSH | ACK, window: 1, payload: p })));
    assert.equal(inj.send(data, meta, sent.length), sent.length);
    await waitFor(() => got.length >= sent.length || errors.length > 0, 3000, `${sent.length} segments`);
    assert.deepEqual(errors, []);
    assert.equal(got.length, sent.length);
    got.forEach((s, k) => assert.ok(s.payload.equals(sent[k]), `payload of ${k}`));
    assert.ok(datas.length >= 2, `one burst in ${datas.length} batches`);
    assert.notEqual(datas[1], datas[0], 'a new Buffer after the detach');
    assert.ok(datas[1].length > 0);
    assert.ok(Buffer.from(moved!).equals(snapshot!), 'the transferred memory was left alone');
  } finally {
    cap.close();
    inj.close();
  }
});
