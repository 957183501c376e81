// UdpMux sending: by address and through connected sockets. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LO, LO_U32, waitFor, payload, MuxRecorder, TxSpec, packUdpTx, dgramSocket, closeDgram,
} from './helpers';

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
    const { data, meta } = packUdpTx(list);
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
