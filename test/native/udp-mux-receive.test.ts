// UdpMux receiving: bursts, several sockets, batch limits, ICMP errors. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LO, LO_U32, sleep, waitFor, payload, MuxRecorder, packUdpTx, dgramSocket, closeDgram,
} from './helpers';

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

test('udp mux: ECONNREFUSED on a connected socket is counted; the mux keeps serving other sockets', async () => {
  const r = new MuxRecorder();
  const { sock: sender } = await dgramSocket();
  // A port with nothing listening: bind, learn, close.
  const { sock: gone, port: deadPort } = await dgramSocket();
  closeDgram(gone);
  try {
    const cid = r.mux.connect(LO, deadPort);
    const live = r.mux.bind(LO, 0);
    const { data, meta } = packUdpTx([{ socket: cid, data: Buffer.from('anyone?'), dstIp: 0, dstPort: 0 }]);
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
