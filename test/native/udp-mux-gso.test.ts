// UdpMux sending with UDP GSO: runs of equal-sized datagrams to one destination leave as one message
// each (UDP_SEGMENT), and still arrive as the datagrams they were; a group the kernel refuses goes
// out one by one. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { LO, LO_U32, waitFor, payload, MuxRecorder, TxSpec, packUdpTx, dgramSocket, closeDgram, runChild, NATIVE_JS } from './helpers';
import { UDP_TX, UDP_TX_STRIDE } from '../../src/io/native';

test('udp mux: equal-sized datagrams to one destination are coalesced, and arrive whole and in order', async () => {
  const r = new MuxRecorder();
  const a = await dgramSocket();
  const b = await dgramSocket();
  try {
    const id = r.mux.bind(LO, 0);
    const list: TxSpec[] = [];
    const to = (port: number, n: number, size: number) => {
      for (let i = 0; i < n; i++) list.push({ socket: id, data: payload(list.length, size), dstIp: LO_U32, dstPort: port });
    };
    to(a.port, 20, 1200); // a group of 20
    to(a.port, 1, 300); //   ... with a shorter last datagram
    to(b.port, 10, 700); //  another destination: another group
    to(a.port, 2, 900);
    to(a.port, 1, 0); //     an empty datagram is never grouped (the split would not see it)
    to(a.port, 2, 900);
    to(b.port, 1, 1000); //  a group with a shorter last datagram ...
    to(b.port, 1, 100);
    to(b.port, 1, 200); //   ... ends there: 200 B alone
    to(a.port, 1, 10); //    sizes that grow: each alone
    to(a.port, 1, 20);
    to(a.port, 1, 30);
    const first = list.length;
    const one = packUdpTx(list);
    assert.equal(r.mux.send(one.data, one.meta, first), first);
    assert.equal(r.mux.stats().coalesced, 21 + 10 + 2 + 2 + 2, 'datagrams sent in GSO groups');
    to(a.port, 70, 800); //  more than one sendmmsg() run holds: two groups
    const two = packUdpTx(list.slice(first));
    assert.equal(r.mux.send(two.data, two.meta, list.length - first), list.length - first);
    await waitFor(() => a.got.length + b.got.length >= list.length, 10000, `${list.length} datagrams at the receivers`);
    for (const [name, rx] of [['a', a], ['b', b]] as const) {
      const want = list.filter((t) => t.dstPort === rx.port).map((t) => t.data);
      assert.equal(rx.got.length, want.length, `receiver ${name}: datagram count`);
      rx.got.forEach((g, i) => assert.ok(g.data.equals(want[i]), `receiver ${name}: datagram ${i} (${g.data.length} B, want ${want[i].length} B)`));
    }
    const st = r.mux.stats();
    assert.equal(st.sent, list.length);
    assert.equal(st.sendErrors, 0);
    assert.equal(st.gsoRefused, 0);
    assert.equal(st.coalesced, 37 + 70);
  } finally {
    closeDgram(a.sock);
    closeDgram(b.sock);
    r.mux.stop();
  }
});

test('udp mux: a group the route refuses (segments above its MTU) goes out datagram by datagram, and is not tried again', (t) => {
  for (const tool of ['unshare', 'ip']) {
    if (spawnSync(tool, ['-V']).error) return t.skip(`${tool} is missing`);
  }
  // In a private network namespace whose loopback has an Ethernet MTU: a 3000 B segment does not fit it.
  const r = runChild(
    `
    const { execSync } = require('child_process');
    const dgram = require('dgram');
    const { UDP_TX, UDP_TX_STRIDE } = require(${JSON.stringify(NATIVE_JS)});
    execSync('ip link set lo up mtu 1500');
    const rx = dgram.createSocket('udp4');
    const got = [];
    rx.on('message', (m) => got.push(m.length));
    rx.bind(0, '127.0.0.1', () => {
      const port = rx.address().port;
      const mux = new n.UdpMux(() => {});
      const id = mux.bind('127.0.0.1', 0);
      const send = (sizes) => {
        const meta = new Uint32Array(sizes.length * UDP_TX_STRIDE);
        let off = 0;
        sizes.forEach((len, i) => {
          const b = i * UDP_TX_STRIDE;
          meta[b + UDP_TX.SOCKET] = id; meta[b + UDP_TX.OFFSET] = off; meta[b + UDP_TX.LENGTH] = len;
          meta[b + UDP_TX.DST_IP] = 0x7f000001; meta[b + UDP_TX.DST_PORT] = port;
          off += len;
        });
        return mux.send(Buffer.alloc(off, 7), meta, sizes.length);
      };
      const sent = [send([3000, 3000, 3000, 3000]), send([1000, 1000, 1000, 1000])];
      const after1 = mux.stats();
      sent.push(send([3000, 3000, 3000]));
      setTimeout(() => { console.log(JSON.stringify({ sent, got, after1, after2: mux.stats() })); mux.stop(); rx.close(); }, 300);
    });`,
    10000,
    ['unshare', '--net', '--'],
  );
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { sent: number[]; got: number[]; after1: Record<string, number | string>; after2: Record<string, number | string> };
  assert.deepEqual(out.sent, [4, 4, 3], 'every datagram accepted');
  assert.deepEqual(out.got, [3000, 3000, 3000, 3000, 1000, 1000, 1000, 1000, 3000, 3000, 3000], 'each arrived whole (fragmented), in order');
  assert.equal(out.after1.sendErrors, 0);
  assert.equal(out.after1.coalesced, 4, 'the 1000 B group fits the MTU and was coalesced');
  assert.equal(out.after1.gsoRefused, 1, 'the 3000 B group was refused once');
  assert.match(String(out.after1.lastError), /Message too long|Invalid argument/, 'the refusal is on record');
  assert.equal(out.after2.coalesced, 4);
  assert.equal(out.after2.gsoRefused, 1, '3000 B datagrams are no longer grouped on this socket');
  assert.equal(out.after2.sendErrors, 0);
});

test('udp mux: an IPv6 socket coalesces to IPv6 and to IPv4-mapped destinations', async () => {
  const r = new MuxRecorder();
  const v4 = await dgramSocket();
  const v6 = dgram.createSocket('udp6');
  const got6: Buffer[] = [];
  v6.on('message', (m) => got6.push(m));
  try {
    await new Promise<void>((resolve) => v6.bind(0, '::1', resolve));
    const id = r.mux.bind('::', 0);
    const meta = new Uint32Array(8 * UDP_TX_STRIDE);
    const data = Buffer.concat(Array.from({ length: 8 }, (_, i) => payload(i, 1000)));
    for (let i = 0; i < 8; i++) {
      const b = i * UDP_TX_STRIDE;
      meta[b + UDP_TX.SOCKET] = id;
      meta[b + UDP_TX.OFFSET] = i * 1000;
      meta[b + UDP_TX.LENGTH] = 1000;
      if (i < 4) {
        meta[b + UDP_TX.DST_IP] = LO_U32;
        meta[b + UDP_TX.DST_PORT] = v4.port;
      } else {
        meta[b + UDP_TX.IP_VERSION] = 6;
        meta[b + UDP_TX.DST_IP6 + 3] = 1; // ::1
        meta[b + UDP_TX.DST_PORT] = (v6.address() as { port: number }).port;
      }
    }
    assert.equal(r.mux.send(data, meta, 8), 8);
    await waitFor(() => v4.got.length + got6.length >= 8, 5000, '8 datagrams');
    v4.got.forEach((g, i) => assert.ok(g.data.equals(payload(i, 1000)), `IPv4-mapped datagram ${i}`));
    got6.forEach((g, i) => assert.ok(g.equals(payload(4 + i, 1000)), `IPv6 datagram ${i}`));
    assert.deepEqual([v4.got.length, got6.length], [4, 4]);
    assert.equal(r.mux.stats().coalesced, 8, 'two groups of four');
  } finally {
    closeDgram(v4.sock);
    v6.close();
    r.mux.stop();
  }
});

test('udp mux: ECONNREFUSED met by a group is a socket error, not a GSO refusal', async () => {
  const r = new MuxRecorder();
  const gone = await dgramSocket();
  const deadPort = gone.port;
  closeDgram(gone.sock);
  try {
    const cid = r.mux.connect(LO, deadPort);
    const { data, meta } = packUdpTx(Array.from({ length: 4 }, (_, i) => ({ socket: cid, data: payload(i, 100), dstIp: 0, dstPort: 0 })));
    // On loopback the ICMP error comes back inside the first send(), so the second one meets it
    // before the event loop could read it off the socket.
    assert.equal(r.mux.send(data, meta, 4), 4);
    r.mux.send(data, meta, 4);
    const st = r.mux.stats();
    assert.match(st.lastError, /refused/);
    assert.equal(st.gsoRefused, 0, 'GSO stays on for this socket');
    assert.equal(st.sent + st.sendErrors, 8, `every datagram sent or counted lost: ${st.sent} sent + ${st.sendErrors} lost`);
    assert.equal(st.sent, 8, 'the group that met the error went out one by one');
    assert.equal(st.coalesced, 4);
  } finally {
    r.mux.stop();
  }
});
