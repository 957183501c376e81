// Tests of the native UdpMux against the real kernel, on loopback only. They need a built addon
// (npm run build:native) and root: the burst test relies on SO_RCVBUFFORCE lifting the mux's receive
// buffer above net.core.rmem_max.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { loadNative, UDP_RX, UDP_RX_STRIDE, UDP_TX, UDP_TX_STRIDE, UdpMux, UdpMuxOptions } from '../../src/io/native';

const native = loadNative();
const LO = '127.0.0.1';
const LO_U32 = 0x7f000001;

// ---------- helpers ----------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Deterministic payload: distinct per index, so a swap or a wrong offset shows. */
function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7 + (k >> 8)) & 0xff;
  return b;
}

interface Rx {
  socket: number;
  data: Buffer;
  srcIp: number;
  srcPort: number;
}

/** A mux that records what it receives; failures are collected, not thrown: `errors` must stay empty. */
class MuxRecorder {
  readonly rx: Rx[] = [];
  readonly batchSizes: number[] = [];
  readonly errors: Error[] = [];
  readonly mux: UdpMux;

  constructor(opts?: UdpMuxOptions) {
    this.mux = new native.UdpMux((data, meta, count) => {
      try {
        assert.ok(Buffer.isBuffer(data));
        assert.ok(meta instanceof Uint32Array);
        // The same arrays serve every batch: meta has room for maxBatch records, `count` are valid.
        assert.ok(meta.length >= count * UDP_RX_STRIDE, 'meta holds the batch');
        assert.ok(count > 0, 'no empty batches');
        this.batchSizes.push(count);
        for (let i = 0; i < count; i++) {
          const b = i * UDP_RX_STRIDE;
          const off = meta[b + UDP_RX.OFFSET];
          const len = meta[b + UDP_RX.LENGTH];
          assert.ok(off + len <= data.length, 'datagram lies inside the batch buffer');
          this.rx.push({
            socket: meta[b + UDP_RX.SOCKET],
            // A copy: the batch buffer is reused by the next batch.
            data: Buffer.from(data.subarray(off, off + len)),
            srcIp: meta[b + UDP_RX.SRC_IP],
            srcPort: meta[b + UDP_RX.SRC_PORT],
          });
        }
      } catch (e) {
        this.errors.push(e as Error);
      }
    }, opts);
  }
}

interface TxSpec {
  socket: number;
  data: Buffer;
  dstIp: number;
  dstPort: number;
}

function packTx(list: TxSpec[]): { data: Buffer; meta: Uint32Array } {
  const data = Buffer.concat(list.map((t) => t.data));
  const meta = new Uint32Array(list.length * UDP_TX_STRIDE);
  let off = 0;
  list.forEach((t, i) => {
    const b = i * UDP_TX_STRIDE;
    meta[b + UDP_TX.SOCKET] = t.socket;
    meta[b + UDP_TX.OFFSET] = off;
    meta[b + UDP_TX.LENGTH] = t.data.length;
    meta[b + UDP_TX.DST_IP] = t.dstIp;
    meta[b + UDP_TX.DST_PORT] = t.dstPort;
    off += t.data.length;
  });
  return { data, meta };
}

async function dgramSocket(): Promise<{ sock: dgram.Socket; port: number; got: { data: Buffer; port: number }[] }> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 16 << 20, sendBufferSize: 16 << 20 });
  const got: { data: Buffer; port: number }[] = [];
  sock.on('message', (msg, rinfo) => got.push({ data: msg, port: rinfo.port }));
  await new Promise<void>((resolve) => sock.bind(0, LO, resolve));
  return { sock, port: sock.address().port, got };
}

function closeDgram(sock: dgram.Socket): void {
  try {
    sock.close();
  } catch {
    // already closed
  }
}

// ---------- receiving ----------

test('udp mux: a burst of 1000 datagrams from dgram arrives whole, in batches, with the right source', async () => {
  const r = new MuxRecorder({ rcvBuf: 32 << 20 });
  const { sock: sender, port: senderPort } = await dgramSocket();
  try {
    const id = r.mux.bind(LO, 0);
    const port = r.mux.localPort(id);
    assert.ok(port > 0);
    const sent: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      // 1..1400 bytes, and every 100th a jumbo one bigger than the 2 KiB receive slot.
      const size = i % 100 === 50 ? 9000 + i : 1 + ((i * 137) % 1400);
      sent.push(payload(i, size));
    }
    // All sends are issued in one go, without yielding to the event loop: the mux has to batch.
    for (const b of sent) sender.send(b, port, LO);
    await waitFor(() => r.rx.length >= sent.length, 10000, `1000 datagrams (got ${r.rx.length})`);
    await sleep(50);
    assert.deepEqual(r.errors, []);
    assert.equal(r.rx.length, sent.length, 'nothing extra');
    r.rx.forEach((d, i) => {
      assert.equal(d.socket, id);
      assert.equal(d.srcIp, LO_U32);
      assert.equal(d.srcPort, senderPort);
      // One sender, one receiver on loopback: order is preserved.
      assert.ok(d.data.equals(sent[i]), `datagram ${i} (${sent[i].length} bytes) intact`);
    });
    const avg = r.rx.length / r.batchSizes.length;
    assert.ok(avg > 1, `batches carry more than one datagram on average (got ${avg.toFixed(2)})`);
    assert.ok(Math.max(...r.batchSizes) <= 256, 'default maxBatch respected');
    const st = r.mux.stats();
    assert.equal(st.received, 1000);
    assert.equal(st.batches, r.batchSizes.length);
    assert.equal(st.recvErrors, 0);
    assert.equal(st.sockets, 1);
  } finally {
    closeDgram(sender);
    r.mux.stop();
  }
});

test('udp mux: several sockets, maxBatch caps batches, the largest UDP datagram is received whole', async () => {
  const r = new MuxRecorder({ maxBatch: 8 });
  const { sock: sender, port: senderPort } = await dgramSocket();
  try {
    const a = r.mux.bind(LO, 0);
    const b = r.mux.bind('', 0); // any address
    assert.notEqual(a, b);
    const ports = new Map([[a, r.mux.localPort(a)], [b, r.mux.localPort(b)]]);
    const expected = new Map<number, Buffer[]>([[a, []], [b, []]]);
    for (let i = 0; i < 200; i++) {
      const to = i % 3 === 0 ? b : a;
      const d = payload(i, 10 + (i % 50));
      expected.get(to)!.push(d);
      sender.send(d, ports.get(to)!, LO);
    }
    const big = payload(7, 65507);
    expected.get(a)!.push(big);
    sender.send(big, ports.get(a)!, LO);
    await waitFor(() => r.rx.length >= 201, 10000, '201 datagrams');
    assert.deepEqual(r.errors, []);
    assert.ok(Math.max(...r.batchSizes) <= 8, `maxBatch 8 respected (max ${Math.max(...r.batchSizes)})`);
    for (const id of [a, b]) {
      const got = r.rx.filter((d) => d.socket === id);
      const want = expected.get(id)!;
      assert.equal(got.length, want.length, `socket ${id} count`);
      got.forEach((d, i) => {
        assert.ok(d.data.equals(want[i]), `socket ${id} datagram ${i}`);
        assert.equal(d.srcPort, senderPort);
      });
    }
  } finally {
    closeDgram(sender);
    r.mux.stop();
  }
});

// ---------- sending ----------

test('udp mux: send() delivers a batch to a dgram receiver, by address and through a connected socket', async () => {
  const r = new MuxRecorder();
  const { sock: receiver, port: rport, got } = await dgramSocket();
  try {
    const id = r.mux.bind(LO, 0);
    const cid = r.mux.connect(LO, rport);
    const list: TxSpec[] = [];
    // The dgram receiver cannot read while send() runs, and its buffer is capped by rmem_max
    // (208 KiB by default): about 250 small datagrams fit.
    for (let i = 0; i < 180; i++) {
      const size = i === 123 ? 9000 : i % 17; // includes empty datagrams and a jumbo one
      list.push({ socket: id, data: payload(i, size), dstIp: LO_U32, dstPort: rport });
    }
    // Alternating runs of both sockets, runs longer than one sendmmsg chunk.
    for (let i = 0; i < 70; i++) list.push({ socket: cid, data: payload(1000 + i, 100 + i), dstIp: 0, dstPort: 0 });
    for (let i = 0; i < 5; i++) list.push({ socket: id, data: payload(2000 + i, 5), dstIp: LO_U32, dstPort: rport });
    const { data, meta } = packTx(list);
    assert.equal(r.mux.send(data, meta, list.length), list.length);
    await waitFor(() => got.length >= list.length, 10000, `${list.length} datagrams at the receiver`);
    const fromPort = (p: number) => got.filter((g) => g.port === p).map((g) => g.data);
    const viaBound = fromPort(r.mux.localPort(id));
    const viaConnected = fromPort(r.mux.localPort(cid));
    const wantBound = list.filter((t) => t.socket === id).map((t) => t.data);
    const wantConnected = list.filter((t) => t.socket === cid).map((t) => t.data);
    assert.equal(viaBound.length, wantBound.length);
    assert.equal(viaConnected.length, wantConnected.length);
    viaBound.forEach((d, i) => assert.ok(d.equals(wantBound[i]), `bound datagram ${i}`));
    viaConnected.forEach((d, i) => assert.ok(d.equals(wantConnected[i]), `connected datagram ${i}`));
    const st = r.mux.stats();
    assert.equal(st.sent, list.length);
    assert.equal(st.sendErrors, 0);

    // The connected socket receives the peer's replies.
    receiver.send(Buffer.from('reply'), r.mux.localPort(cid), LO);
    await waitFor(() => r.rx.length >= 1, 5000, 'the reply');
    assert.equal(r.rx[0].socket, cid);
    assert.equal(r.rx[0].data.toString(), 'reply');
    assert.equal(r.rx[0].srcPort, rport);
    // An empty batch is fine.
    assert.equal(r.mux.send(Buffer.alloc(0), new Uint32Array(0), 0), 0);
    assert.deepEqual(r.errors, []);
  } finally {
    closeDgram(receiver);
    r.mux.stop();
  }
});

test('udp mux: ECONNREFUSED on a connected socket is counted; the mux keeps serving other sockets', async () => {
  const r = new MuxRecorder();
  const { sock: sender } = await dgramSocket();
  // A port with nothing listening: bind, learn, close.
  const { sock: gone, port: deadPort } = await dgramSocket();
  closeDgram(gone);
  try {
    const cid = r.mux.connect(LO, deadPort);
    const live = r.mux.bind(LO, 0);
    const { data, meta } = packTx([{ socket: cid, data: Buffer.from('anyone?'), dstIp: 0, dstPort: 0 }]);
    const deadline = Date.now() + 5000;
    let st = r.mux.stats();
    while (st.sendErrors + st.recvErrors === 0) {
      assert.ok(Date.now() < deadline, 'an ECONNREFUSED within 5 s');
      r.mux.send(data, meta, 1);
      await sleep(10);
      st = r.mux.stats();
    }
    assert.match(st.lastError, /Connection refused/);
    // Keep provoking errors for a while; the mux must not spin on them.
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    for (let i = 0; i < 20; i++) {
      r.mux.send(data, meta, 1);
      await sleep(10);
    }
    await sleep(100);
    const cpu = process.cpuUsage(cpu0);
    const wallMs = Date.now() - t0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    assert.ok(cpuMs < wallMs * 0.5, `no busy loop: ${cpuMs.toFixed(0)} ms CPU in ${wallMs} ms`);
    // Both sockets still work.
    sender.send(Buffer.from('still here'), r.mux.localPort(live), LO);
    await waitFor(() => r.rx.some((d) => d.socket === live), 5000, 'a datagram on the other socket');
    assert.equal(r.rx.find((d) => d.socket === live)!.data.toString(), 'still here');
    assert.equal(r.mux.stats().sockets, 2);
    assert.deepEqual(r.errors, []);
  } finally {
    closeDgram(sender);
    r.mux.stop();
  }
});

// ---------- buffer reuse and re-entrancy ----------

/** A second mux to send from: its send() is synchronous, so everything is queued at the receiver before the loop turns. */
function senderMux(): { tx: UdpMux; id: number; sendTo: (port: number, list: Buffer[]) => void } {
  const tx = new native.UdpMux(() => {});
  const id = tx.bind(LO, 0);
  return {
    tx,
    id,
    sendTo(port, list) {
      const { data, meta } = packTx(list.map((d) => ({ socket: id, data: d, dstIp: LO_U32, dstPort: port })));
      assert.equal(tx.send(data, meta, list.length), list.length);
    },
  };
}

test('udp mux: every batch comes in the same Buffer and Uint32Array, valid only during the call', async () => {
  const batches: { data: Buffer; meta: Uint32Array; first: Buffer }[] = [];
  const got: Buffer[] = [];
  const errors: Error[] = [];
  const mux = new native.UdpMux(
    (data, meta, count) => {
      try {
        assert.equal(meta[UDP_RX.OFFSET], 0, 'a batch starts at the beginning of the buffer');
        batches.push({ data, meta, first: Buffer.from(data.subarray(0, meta[UDP_RX.LENGTH])) });
        for (let i = 0; i < count; i++) {
          const b = i * UDP_RX_STRIDE;
          got.push(Buffer.from(data.subarray(meta[b + UDP_RX.OFFSET], meta[b + UDP_RX.OFFSET] + meta[b + UDP_RX.LENGTH])));
        }
      } catch (e) {
        errors.push(e as Error);
      }
    },
    { maxBatch: 4 },
  );
  const s = senderMux();
  try {
    const id = mux.bind(LO, 0);
    const sent = Array.from({ length: 40 }, (_, i) => payload(i, 100 + i));
    s.sendTo(mux.localPort(id), sent);
    await waitFor(() => got.length >= sent.length, 5000, '40 datagrams');
    assert.deepEqual(errors, []);
    assert.equal(got.length, sent.length);
    got.forEach((d, i) => assert.ok(d.equals(sent[i]), `datagram ${i}`));
    assert.ok(batches.length >= 10, `maxBatch 4: at least 10 batches (got ${batches.length})`);
    for (const b of batches) {
      assert.equal(b.data, batches[0].data, 'the same Buffer every time');
      assert.equal(b.meta, batches[0].meta, 'the same Uint32Array every time');
    }
    assert.equal(batches[0].meta.length, 4 * UDP_RX_STRIDE, 'meta has room for maxBatch records');
    // What the contract warns about: a Buffer kept past its call shows the bytes of later batches.
    const last = batches[batches.length - 1];
    assert.ok(!batches[0].first.equals(last.first));
    assert.ok(batches[0].data.subarray(0, last.first.length).equals(last.first));

    // JS may detach the arrays (transfer their ArrayBuffer), even between calls; the mux notices and
    // goes on with new ones, never writing into the memory that went away with them.
    const mark = batches.length;
    const detach = batches[0].data;
    const moved = structuredClone(detach.buffer, { transfer: [detach.buffer] });
    const snapshot = Buffer.from(moved);
    assert.equal(detach.length, 0);
    s.sendTo(mux.localPort(id), [Buffer.from('after detach')]);
    await waitFor(() => got.length > sent.length, 5000, 'a datagram after the detach');
    assert.equal(got[sent.length].toString(), 'after detach');
    assert.notEqual(batches[mark].data, detach);
    assert.ok(batches[mark].data.length > 0);
    assert.ok(Buffer.from(moved).equals(snapshot), 'the transferred memory was left alone');
    assert.deepEqual(errors, []);
  } finally {
    s.tx.stop();
    mux.stop();
  }
});

test('udp mux: onBatch may close, bind, connect and send re-entrantly; a closed id never delivers its old datagrams', async () => {
  const rx: Rx[] = [];
  const errors: Error[] = [];
  const { sock: peer, port: peerPort, got: peerGot } = await dgramSocket();
  const s = senderMux();
  let a = -1;
  let b = -1;
  let reused = -1;
  let closedAt = -1;
  const extra: number[] = [];
  const mux: UdpMux = new native.UdpMux(
    (data, meta, count) => {
      try {
        for (let i = 0; i < count; i++) {
          const m = i * UDP_RX_STRIDE;
          const off = meta[m + UDP_RX.OFFSET];
          rx.push({
            socket: meta[m + UDP_RX.SOCKET],
            data: Buffer.from(data.subarray(off, off + meta[m + UDP_RX.LENGTH])),
            srcIp: meta[m + UDP_RX.SRC_IP],
            srcPort: meta[m + UDP_RX.SRC_PORT],
          });
        }
        if (closedAt >= 0) return;
        // First batch (a's or b's, whichever epoll reported first): a still has datagrams queued
        // in the kernel, and possibly a readiness event pending in this very round.
        closedAt = rx.length;
        mux.close(a);
        reused = mux.bind(LO, 0); // the lowest free id: a's, with a new socket
        // Grow the socket table while the receive round is under way.
        for (let k = 0; k < 40; k++) extra.push(mux.connect(LO, peerPort));
        const list: TxSpec[] = [{ socket: b, data: Buffer.from('fresh'), dstIp: LO_U32, dstPort: mux.localPort(reused) }];
        for (const id of extra) list.push({ socket: id, data: Buffer.from(`hi ${id}`), dstIp: 0, dstPort: 0 });
        // And an echo of this batch's first datagram, straight from the batch buffer.
        list.push({ socket: b, data: data.subarray(meta[UDP_RX.OFFSET], meta[UDP_RX.OFFSET] + meta[UDP_RX.LENGTH]), dstIp: LO_U32, dstPort: peerPort });
        const packed = packTx(list);
        assert.equal(mux.send(packed.data, packed.meta, list.length), list.length);
      } catch (e) {
        errors.push(e as Error);
      }
    },
    { maxBatch: 4 },
  );
  try {
    a = mux.bind(LO, 0);
    b = mux.bind(LO, 0);
    const toA = Array.from({ length: 20 }, (_, i) => Buffer.from(`old a ${i}`));
    const toB = Array.from({ length: 20 }, (_, i) => Buffer.from(`b ${i}`));
    s.sendTo(mux.localPort(a), toA);
    s.sendTo(mux.localPort(b), toB);
    await waitFor(() => rx.some((d) => d.data.toString() === 'fresh') && rx.filter((d) => d.socket === b).length >= 20, 5000, 'b\'s datagrams and the fresh one');
    await waitFor(() => peerGot.length >= extra.length + 1, 5000, 'the sends from inside onBatch');
    await sleep(100);
    assert.deepEqual(errors, []);
    assert.equal(reused, a);
    // Before the close, a's datagrams came in order; after it, id a only ever carries the new socket's.
    const before = rx.slice(0, closedAt).filter((d) => d.socket === a);
    before.forEach((d, i) => assert.equal(d.data.toString(), `old a ${i}`));
    assert.ok(before.length < toA.length, 'a was closed with datagrams still queued');
    const after = rx.slice(closedAt).filter((d) => d.socket === a);
    assert.deepEqual(after.map((d) => d.data.toString()), ['fresh']);
    assert.equal(after[0].srcPort, mux.localPort(b));
    // b lost nothing.
    assert.deepEqual(rx.filter((d) => d.socket === b).map((d) => d.data.toString()), toB.map(String));
    // The sends made from inside onBatch all went out.
    const ports = new Set(extra.map((id) => mux.localPort(id)));
    assert.equal(peerGot.filter((g) => ports.has(g.port)).length, extra.length);
    assert.equal(peerGot.filter((g) => g.port === mux.localPort(b)).length, 1);
    assert.equal(mux.stats().sockets, 2 + extra.length);
  } finally {
    closeDgram(peer);
    s.tx.stop();
    mux.stop();
  }
});

test('udp mux: a socket closed while the rest of its recvmmsg() waits behind a full batch delivers none of it', async () => {
  // 30 datagrams of 40000 bytes: one recvmmsg() reads them all, but the batch buffer (512 KiB by
  // default) takes only 13; the rest waits in native memory while onBatch runs, and onBatch closes
  // the socket and reuses its id.
  const rx: { socket: number; text: string; len: number }[] = [];
  const errors: Error[] = [];
  let a = -1;
  let reused = -1;
  let closedAt = -1;
  const mux: UdpMux = new native.UdpMux((data, meta, count) => {
    try {
      for (let i = 0; i < count; i++) {
        const m = i * UDP_RX_STRIDE;
        const off = meta[m + UDP_RX.OFFSET];
        rx.push({ socket: meta[m], text: data.toString('latin1', off, off + 8), len: meta[m + UDP_RX.LENGTH] });
      }
      if (closedAt < 0) {
        closedAt = rx.length;
        mux.close(a);
        reused = mux.bind(LO, 0);
      }
    } catch (e) {
      errors.push(e as Error);
    }
  });
  const s = senderMux();
  try {
    a = mux.bind(LO, 0);
    const big = Array.from({ length: 30 }, (_, i) => Buffer.alloc(40000, `big ${String(i).padStart(3, '0')} `));
    s.sendTo(mux.localPort(a), big);
    await waitFor(() => closedAt >= 0, 5000, 'the first batch');
    s.sendTo(mux.localPort(reused), [Buffer.from('new sock')]);
    await waitFor(() => rx.length > closedAt, 5000, 'the new socket\'s datagram');
    await sleep(100);
    assert.deepEqual(errors, []);
    assert.equal(reused, a);
    assert.ok(closedAt > 0 && closedAt < 30, `the first batch ended early (${closedAt} datagrams)`);
    rx.slice(0, closedAt).forEach((d, i) => {
      assert.equal(d.text, `big ${String(i).padStart(3, '0')} `);
      assert.equal(d.len, 40000);
    });
    assert.deepEqual(rx.slice(closedAt).map((d) => d.text), ['new sock']);
    assert.equal(mux.stats().recvErrors, 0);
  } finally {
    s.tx.stop();
    mux.stop();
  }
});

test('udp mux: stop() from inside onBatch ends delivery at once, without a crash', async () => {
  let calls = 0;
  const s = senderMux();
  const mux: UdpMux = new native.UdpMux(
    () => {
      calls++;
      mux.stop();
      mux.stop();
    },
    { maxBatch: 2 },
  );
  const a = mux.bind(LO, 0);
  const b = mux.bind(LO, 0);
  const portA = mux.localPort(a);
  try {
    s.sendTo(portA, Array.from({ length: 10 }, (_, i) => payload(i, 50)));
    s.sendTo(mux.localPort(b), Array.from({ length: 10 }, (_, i) => payload(i, 50)));
    await waitFor(() => calls > 0, 5000, 'the first batch');
    await sleep(100);
    assert.equal(calls, 1);
    assert.equal(mux.stats().sockets, 0);
    assert.throws(() => mux.bind(LO, 0), /stopped/);
    // The sockets are closed: their ports are free again.
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(portA, LO, resolve);
    });
    again.close();
  } finally {
    s.tx.stop();
    mux.stop();
  }
});

test('udp mux: onBatch runs like an I/O callback: nextTicks and microtasks right after it, a throw is an uncaught exception', () => {
  const nativeJs = path.join(__dirname, '..', '..', 'src', 'io', 'native.js');
  const script = (handled: boolean) => `
    const dgram = require('dgram');
    const { loadNative } = require(${JSON.stringify(nativeJs)});
    const order = [];
    let calls = 0;
    ${handled ? "process.on('uncaughtException', (e) => order.push('uncaught: ' + e.message));" : ''}
    const mux = new (loadNative().UdpMux)((data, meta, count) => {
      calls++;
      if (calls === 1) throw new Error('boom from onBatch');
      order.push('batch');
      process.nextTick(() => order.push('tick'));
      Promise.resolve().then(() => order.push('microtask'));
      setImmediate(() => order.push('immediate'));
    });
    const port = mux.localPort(mux.bind('127.0.0.1', 0));
    const s = dgram.createSocket('udp4');
    s.send('one', port, '127.0.0.1');
    setTimeout(() => s.send('two', port, '127.0.0.1'), 100);
    setTimeout(() => { console.log(JSON.stringify(order)); mux.stop(); s.close(); }, 300);
  `;
  let res = spawnSync(process.execPath, ['-e', script(true)], { timeout: 10000, encoding: 'utf8' });
  assert.equal(res.status, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout), ['uncaught: boom from onBatch', 'batch', 'tick', 'microtask', 'immediate']);
  // Without a handler the process dies of it, like of any uncaught exception.
  res = spawnSync(process.execPath, ['-e', script(false)], { timeout: 10000, encoding: 'utf8' });
  assert.equal(res.status, 1);
  assert.match(res.stderr, /boom from onBatch/);
  assert.equal(res.stdout, '');
});

// ---------- lifecycle and arguments ----------

test('udp mux: close() and stop() semantics', async () => {
  const r = new MuxRecorder();
  const { sock: sender, port: senderPort } = await dgramSocket();
  try {
    const a = r.mux.bind(LO, 0);
    const b = r.mux.bind(LO, 0);
    const portB = r.mux.localPort(b);
    r.mux.close(a);
    r.mux.close(a); // idempotent
    r.mux.close(12345); // unknown: ignored
    r.mux.close(-1);
    assert.equal(r.mux.stats().sockets, 1);
    assert.throws(() => r.mux.localPort(a), RangeError);
    // Sending on a closed id is counted, not thrown, and does not stop the rest of the batch.
    const { data, meta } = packTx([
      { socket: a, data: Buffer.from('x'), dstIp: LO_U32, dstPort: senderPort },
      { socket: a, data: Buffer.from('y'), dstIp: LO_U32, dstPort: senderPort },
      { socket: b, data: Buffer.from('z'), dstIp: LO_U32, dstPort: senderPort },
    ]);
    assert.equal(r.mux.send(data, meta, 3), 1);
    let st = r.mux.stats();
    assert.equal(st.sendErrors, 2);
    assert.match(st.lastError, /not open/);
    // The lowest free id is reused, with a new socket.
    const c = r.mux.bind(LO, 0);
    assert.equal(c, a);
    sender.send(Buffer.from('to c'), r.mux.localPort(c), LO);
    sender.send(Buffer.from('to b'), portB, LO);
    await waitFor(() => r.rx.length >= 2, 5000, 'two datagrams');
    assert.deepEqual(r.rx.map((d) => `${d.socket}:${d.data}`).sort(), [`${b}:to b`, `${c}:to c`].sort());

    r.mux.stop();
    r.mux.stop(); // idempotent
    st = r.mux.stats();
    assert.equal(st.sockets, 0);
    assert.throws(() => r.mux.bind(LO, 0), /stopped/);
    assert.throws(() => r.mux.connect(LO, 9), /stopped/);
    assert.throws(() => r.mux.send(data, meta, 3), /stopped/);
    r.mux.close(b); // ignored after stop
    // Its port is free again.
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(portB, LO, resolve);
    });
    again.close();
    assert.deepEqual(r.errors, []);
  } finally {
    closeDgram(sender);
    r.mux.stop();
  }
});

test('udp mux: bad arguments throw clear errors and never crash', async () => {
  const Mux = native.UdpMux as unknown as new (...args: unknown[]) => UdpMux;
  assert.throws(() => new Mux(), { name: 'TypeError', message: /onBatch must be a function/ });
  assert.throws(() => new Mux(() => {}, 5), { name: 'TypeError', message: /opts must be an object/ });
  assert.throws(() => new Mux(() => {}, { maxBatch: 0 }), { name: 'RangeError', message: /maxBatch/ });
  assert.throws(() => new Mux(() => {}, { rcvBuf: 1.5 }), { name: 'TypeError', message: /rcvBuf/ });
  assert.throws(() => new Mux(() => {}, { sndBuf: 'big' }), { name: 'TypeError', message: /sndBuf/ });
  assert.throws(() => (native.UdpMux as unknown as (f: unknown) => void)(() => {}), TypeError);

  const typed = new native.UdpMux(() => {});
  // The same object without its types, to pass what JS callers could.
  const mux = typed as unknown as Record<string, (...a: unknown[]) => unknown>;
  const holder = dgram.createSocket('udp4');
  try {
    assert.throws(() => mux.bind(), { name: 'TypeError', message: /ip must be a string/ });
    assert.throws(() => mux.bind('nope', 0), { name: 'TypeError', message: /not an IPv4 address/ });
    assert.throws(() => mux.bind(LO, 70000), { name: 'RangeError', message: /port must be between 0 and 65535/ });
    assert.throws(() => mux.bind(LO, -1), RangeError);
    assert.throws(() => mux.bind(LO, '1'), TypeError);
    assert.throws(() => mux.connect('', 53), { name: 'TypeError', message: /must not be empty/ });
    assert.throws(() => mux.connect(LO, 0), { name: 'RangeError', message: /port must be between 1 and 65535/ });
    assert.throws(() => mux.localPort('0'), TypeError);
    assert.throws(() => mux.localPort(0), { name: 'RangeError', message: /socket 0 is not open/ });
    assert.throws(() => mux.close(1.5), TypeError);
    assert.throws(() => mux.close(undefined), TypeError);

    // Address in use: the message names the address.
    await new Promise<void>((resolve) => holder.bind(0, LO, resolve));
    const taken = holder.address().port;
    assert.throws(() => typed.bind(LO, taken), { message: `udp bind ${LO}:${taken}: Address already in use` });
    assert.throws(() => mux.bind('192.0.2.1', 0), /udp bind 192\.0\.2\.1:0: Cannot assign requested address/);

    const id = typed.bind(LO, 0);
    const good = (words: number[]) => Uint32Array.from(words);
    const data = Buffer.alloc(100);
    assert.throws(() => mux.send('x', good([id, 0, 1, LO_U32, 9]), 1), { name: 'TypeError', message: /data must be a Buffer/ });
    assert.throws(() => mux.send(data, [id, 0, 1, LO_U32, 9], 1), { name: 'TypeError', message: /meta must be a Uint32Array/ });
    assert.throws(() => mux.send(data, new Int32Array(5), 1), TypeError);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9]), 2), { name: 'RangeError', message: /count/ });
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9]), -1), RangeError);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9]), 0.5), TypeError);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9, id, 99, 2, LO_U32, 9]), 2), {
      name: 'RangeError',
      message: /datagram 1: range outside data/,
    });
    assert.throws(() => mux.send(data, good([id, 0xffffffff, 2, LO_U32, 9]), 1), /range outside data/);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 65536]), 1), /dstPort out of range/);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 0]), 1), /dstPort must not be 0/);
    assert.throws(() => mux.send(Buffer.alloc(70000), good([id, 0, 65508, LO_U32, 9]), 1), /longer than a UDP datagram/);
    // Nothing was sent by the rejected batches.
    assert.equal(typed.stats().sent, 0);
    assert.equal(typed.stats().sendErrors, 0);
    // An unconnected socket without a destination: a kernel error, counted.
    assert.equal(typed.send(data, good([id, 0, 1, 0, 0]), 1), 0);
    assert.equal(typed.stats().sendErrors, 1);
    assert.match(typed.stats().lastError, /Destination address required/);
  } finally {
    closeDgram(holder);
    typed.stop();
  }
});

test('udp mux: an open mux does not keep the process alive', () => {
  const nativeJs = path.join(__dirname, '..', '..', 'src', 'io', 'native.js');
  const script = `
    const { loadNative } = require(${JSON.stringify(nativeJs)});
    const mux = new (loadNative().UdpMux)(() => {});
    mux.connect('127.0.0.1', 9);
    mux.bind('127.0.0.1', 0);
    console.log('ok');
  `;
  const res = spawnSync(process.execPath, ['-e', script], { timeout: 10000, encoding: 'utf8' });
  assert.equal(res.error, undefined, 'exited on its own within 10 s');
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'ok');
});

test('udp mux: a worker thread that ends with its mux open tears it down cleanly', async () => {
  const nativeJs = path.join(__dirname, '..', '..', 'src', 'io', 'native.js');
  const run = (code: string, terminate: boolean) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.on('error', reject);
      w.on('message', () => {
        if (terminate) void w.terminate();
      });
      w.on('exit', resolve);
    });
  const body = `
    const { parentPort } = require('worker_threads');
    const { loadNative } = require(${JSON.stringify(nativeJs)});
    const mux = new (loadNative().UdpMux)(() => parentPort.postMessage('batch'));
    const id = mux.bind('127.0.0.1', 0);
    mux.connect('127.0.0.1', 9);
    const s = require('dgram').createSocket('udp4');
    s.send('x', mux.localPort(id), '127.0.0.1', () => s.close());
  `;
  const epollFds = () =>
    fs.readdirSync('/proc/self/fd').filter((f) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${f}`).includes('eventpoll');
      } catch {
        return false; // the directory's own fd, gone by now
      }
    }).length;
  await sleep(50); // muxes stopped by earlier tests finish closing on a later loop turn
  const before = epollFds();
  for (let i = 0; i < 5; i++) {
    // Ends on its own once the datagram is in (the mux does not keep it alive) ...
    assert.equal(await run(body, false), 0);
    // ... or is terminated while busy.
    assert.equal(await run(body + 'setInterval(() => {}, 1000);', true), 1);
  }
  // Each mux's epoll descriptor was closed with it (each worker's loop has one of its own too).
  await sleep(50);
  assert.equal(epollFds(), before);
});
