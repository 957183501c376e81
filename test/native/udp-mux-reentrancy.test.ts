// UdpMux batches: one reused Buffer and meta array, and what onBatch may do re-entrantly. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { UDP_RX, UDP_RX_STRIDE, UdpMux } from '../../src/io/native';
import {
  native, LO, LO_U32, NATIVE_JS, sleep, waitFor, payload, Rx, readUdpBatch, TxSpec, packUdpTx, dgramSocket, closeDgram, bindsAgain, senderMux,
} from './helpers';

test('udp mux: every batch comes in the same Buffer and Uint32Array, valid only during the call', async () => {
  const batches: { data: Buffer; meta: Uint32Array; first: Buffer }[] = [];
  const got: Buffer[] = [];
  const errors: Error[] = [];
  const mux = new native.UdpMux(
    (data, meta, count) => {
      try {
        assert.equal(meta[UDP_RX.OFFSET], 0, 'a batch starts at the beginning of the buffer');
        batches.push({ data, meta, first: Buffer.from(data.subarray(0, meta[UDP_RX.LENGTH])) });
        for (const d of readUdpBatch(data, meta, count)) got.push(d.data);
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
        rx.push(...readUdpBatch(data, meta, count));
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
        const packed = packUdpTx(list);
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
      for (const d of readUdpBatch(data, meta, count)) {
        rx.push({ socket: d.socket, text: d.data.toString('latin1', 0, 8), len: d.data.length });
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
    await bindsAgain(portA);
  } finally {
    s.tx.stop();
    mux.stop();
  }
});

test('udp mux: onBatch runs like an I/O callback: nextTicks and microtasks right after it, a throw is an uncaught exception', () => {
  const nativeJs = NATIVE_JS;
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
