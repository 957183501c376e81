// The addon over IPv6, on lo (::1): segments injected from IPv6 TX records and captured back, checked
// against an independent parser and checksum; kernel handshakes on AF_INET6 sockets, the default
// dual-stack listener with an IPv4 peer; UDP sockets on ::1 and on :: with IPv4 and IPv6 peers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { Capture, CAPTURE, CAPTURE_STRIDE, TX, TX_STRIDE, TX_OPT_TIMESTAMP, UDP_RX, UDP_RX_STRIDE, UDP_TX, UDP_TX_STRIDE, WatcherEvent } from '../../src/io/native';
import { native, LO, LO_U32, ACK, PSH, randomPort, waitFor, newWatcher, sleep } from './helpers';

const LO6 = [0, 0, 0, 1];

/** RFC 1071 sum; 0 means the stored checksum verifies. */
function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface Seg6 { hop: number; label: number; next: number; src: string; dst: string; sport: number; dport: number; seq: number; ack: number; flags: number; window: number; doff: number; payload: Buffer; checksumOk: boolean }

function parse6(p: Buffer): Seg6 {
  assert.equal(p[0] >> 4, 6, 'IPv6');
  assert.equal(40 + p.readUInt16BE(4), p.length, 'the payload length matches the captured length');
  const tcp = p.subarray(40);
  // The IPv6 pseudo-header: source, destination, upper-layer length (32 bits), three zeros, next header.
  const pseudo = Buffer.alloc(40);
  p.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(tcp.length, 32);
  pseudo[39] = 6;
  const doff = (tcp[12] >> 4) * 4;
  const hex = (o: number) => p.subarray(o, o + 16).toString('hex');
  return {
    hop: p[7], label: p.readUInt32BE(0) & 0xfffff, next: p[6], src: hex(8), dst: hex(24),
    sport: tcp.readUInt16BE(0), dport: tcp.readUInt16BE(2), seq: tcp.readUInt32BE(4), ack: tcp.readUInt32BE(8),
    flags: tcp[13], window: tcp.readUInt16BE(14), doff, payload: Buffer.from(tcp.subarray(doff)),
    checksumOk: checksum(Buffer.concat([pseudo, tcp])) === 0,
  };
}

test('injector: IPv6 segments from TX records, captured on lo: headers as the records say, valid TCP checksums, IPv4 in between', async () => {
  const sport = randomPort();
  const dport = sport + 1;
  const n = 150; // more than two 64-message chunks, with families mixed inside a batch
  const got: Buffer[] = [];
  const errors: Error[] = [];
  const cap: Capture = new native.Capture({ device: 'lo', filter: `tcp and src port ${sport} and dst port ${dport}`, bufferBytes: 64 << 20 }, (data, meta, count) => {
    for (let i = 0; i < count; i++) {
      const o = meta[i * CAPTURE_STRIDE + CAPTURE.OFFSET];
      got.push(Buffer.from(data.subarray(o, o + meta[i * CAPTURE_STRIDE + CAPTURE.LENGTH])));
    }
  }, (e) => errors.push(e));
  const inj = new native.Injector();
  try {
    const payloads = Array.from({ length: n }, (_, i) => crypto.randomBytes(i % 9 === 0 ? 0 : 1 + ((i * 131) % 1400)));
    const data = Buffer.concat(payloads);
    const meta = new Uint32Array(n * TX_STRIDE);
    let off = 0;
    payloads.forEach((p, i) => {
      const m = i * TX_STRIDE;
      const v6 = i % 10 !== 5;
      meta[m + TX.IP_VERSION] = v6 ? 6 : 4;
      if (v6) {
        meta.set(LO6, m + TX.SRC_IP6);
        meta.set(LO6, m + TX.DST_IP6);
      } else {
        meta[m + TX.SRC_IP] = LO_U32;
        meta[m + TX.DST_IP] = LO_U32;
      }
      meta[m + TX.SRC_PORT] = sport;
      meta[m + TX.DST_PORT] = dport;
      meta[m + TX.SEQ] = (0xffffff00 + i * 1000) >>> 0;
      meta[m + TX.ACK] = i * 77;
      meta[m + TX.FLAGS] = p.length ? PSH | ACK : ACK;
      meta[m + TX.WINDOW] = 1000 + i;
      meta[m + TX.PAYLOAD_OFF] = off;
      meta[m + TX.PAYLOAD_LEN] = p.length;
      meta[m + TX.OPTIONS] = i % 2 ? TX_OPT_TIMESTAMP : 0;
      meta[m + TX.TS_VAL] = i;
      meta[m + TX.TS_ECR] = ~i >>> 0;
      meta[m + TX.TTL] = [0, 1, 64, 255][i % 4];
      meta[m + TX.FLOW_LABEL] = i % 3 ? 0 : 0xfffff - i;
      off += p.length;
    });
    assert.equal(inj.send(data, meta, n), n);
    // The capture takes incoming packets only (the default): each once, in order.
    await waitFor(() => got.length >= n || errors.length > 0, 5000, `${n} captured packets`);
    assert.deepEqual(errors, []);
    assert.equal(got.length, n);
    got.forEach((pkt, i) => {
      const m = i * TX_STRIDE;
      const what = `segment ${i}`;
      if (meta[m + TX.IP_VERSION] !== 6) {
        assert.equal(pkt[0] >> 4, 4, `${what}: IPv4 where the record says so`);
        return;
      }
      const s = parse6(pkt);
      assert.equal(s.next, 6, `${what}: TCP right after the IPv6 header`);
      assert.equal(s.hop, meta[m + TX.TTL] || 64, `${what}: hop limit`);
      assert.equal(s.label, meta[m + TX.FLOW_LABEL], `${what}: flow label`);
      assert.equal(s.src, '00000000000000000000000000000001');
      assert.equal(s.dst, s.src);
      assert.deepEqual([s.sport, s.dport, s.seq, s.ack, s.flags, s.window], [sport, dport, meta[m + TX.SEQ], meta[m + TX.ACK], meta[m + TX.FLAGS], meta[m + TX.WINDOW]], what);
      assert.equal(s.doff, i % 2 ? 32 : 20, `${what}: the timestamp option when asked`);
      assert.ok(s.payload.equals(payloads[i]), `${what}: payload`);
      assert.ok(s.checksumOk, `${what}: TCP checksum over the IPv6 pseudo-header`);
    });
    assert.deepEqual(inj.stats(), { sent: n, errors: 0, lastError: '' });
    assert.throws(() => inj.send(data, (() => { const b = meta.slice(0, TX_STRIDE); b[TX.FLOW_LABEL] = 0x100000; return b; })(), 1), /FLOW_LABEL/);
  } finally {
    cap.close();
    inj.close();
  }
});

function connectedEvents(events: WatcherEvent[]) {
  const c = events.find((e) => e.type === 'connected');
  const a = events.find((e) => e.type === 'accepted');
  return c && a ? { c: c as WatcherEvent & { type: 'connected' }, a: a as WatcherEvent & { type: 'accepted' } } : null;
}

test('watcher: an IPv6 handshake on ::1 reports IPv6 addresses, the hop limit and both sequence numbers', async () => {
  const { watcher, events } = newWatcher();
  try {
    const port = randomPort();
    watcher.listen('::1', port, 16);
    const fd = watcher.connect('', '::1', port);
    await waitFor(() => connectedEvents(events) !== null, 5000, 'connected and accepted');
    const { c, a } = connectedEvents(events)!;
    assert.equal(c.fd, fd);
    for (const e of [c, a]) {
      assert.deepEqual([e.ipVersion, e.localAddr, e.remoteAddr, e.localIp, e.remoteIp], [6, '::1', '::1', 0, 0]);
      assert.equal(e.ttl, 64, 'the hop limit of lo (net.ipv6.conf.lo.hop_limit)');
      assert.ok(e.mss > 0 && e.tsOk);
    }
    assert.deepEqual([c.localPort, c.remotePort], [a.remotePort, port]);
    assert.deepEqual([c.sndNxt, c.rcvNxt], [a.rcvNxt, a.sndNxt], 'each side\'s next seq is the other\'s expected one');
    assert.throws(() => watcher.connect('127.0.0.1', '::1', port), /not of the destination's IP version/);
  } finally {
    watcher.stop();
  }
});

test('watcher: listen("") takes IPv6 and IPv4 at once; an IPv4 peer is reported as IPv4, not ::ffff:127.0.0.1', async () => {
  const { watcher, events } = newWatcher();
  try {
    const port = randomPort();
    watcher.listen('', port, 16);
    const fd4 = watcher.connect('', LO, port);
    await waitFor(() => events.filter((e) => e.type === 'accepted').length === 1, 5000, 'the IPv4 connection');
    const a4 = events.find((e) => e.type === 'accepted') as WatcherEvent & { type: 'accepted' };
    assert.deepEqual([a4.ipVersion, a4.localAddr, a4.remoteAddr, a4.localIp, a4.remoteIp], [4, LO, LO, LO_U32, LO_U32]);
    assert.equal(a4.ttl, 64, 'IP_TTL of the dual-stack socket');
    watcher.connect('', '::1', port);
    await waitFor(() => events.filter((e) => e.type === 'accepted').length === 2, 5000, 'the IPv6 connection');
    const a6 = events.filter((e) => e.type === 'accepted')[1] as WatcherEvent & { type: 'accepted' };
    assert.deepEqual([a6.ipVersion, a6.remoteAddr], [6, '::1']);
    assert.ok(fd4 > 0);
    // "0.0.0.0" stays IPv4 only: an IPv6 dial to its port is refused.
    const port4 = randomPort();
    watcher.listen('0.0.0.0', port4, 16);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '::1', port: port4 }, () => { s.destroy(); resolve(false); });
      s.on('error', () => resolve(true));
    });
    assert.ok(refused, 'an IPv4 listener should not take IPv6');
  } finally {
    watcher.stop();
  }
});

test('udp mux: IPv6 sockets; sources as IPv6 words or, on a dual-stack socket, as plain IPv4; replies to each', async () => {
  const rx: { v: number; ip: number; ip6: number[]; port: number; data: string; socket: number }[] = [];
  const mux = new native.UdpMux((data, meta, count) => {
    for (let i = 0; i < count; i++) {
      const b = i * UDP_RX_STRIDE;
      const o = meta[b + UDP_RX.OFFSET];
      rx.push({
        v: meta[b + UDP_RX.IP_VERSION], ip: meta[b + UDP_RX.SRC_IP], ip6: [...meta.subarray(b + UDP_RX.SRC_IP6, b + UDP_RX.SRC_IP6 + 4)],
        port: meta[b + UDP_RX.SRC_PORT], data: data.toString('utf8', o, o + meta[b + UDP_RX.LENGTH]), socket: meta[b + UDP_RX.SOCKET],
      });
    }
  });
  const s6 = dgram.createSocket('udp6');
  const s4 = dgram.createSocket('udp4');
  const back: { from: string; data: string }[] = [];
  for (const s of [s6, s4]) s.on('message', (m, r) => back.push({ from: r.address, data: m.toString() }));
  try {
    const only6 = mux.bind('::1', 0);
    const dual = mux.bind('::', 0);
    await new Promise<void>((r) => s6.bind(0, '::1', r));
    await new Promise<void>((r) => s4.bind(0, LO, r));
    s6.send('to-v6', mux.localPort(only6), '::1');
    s4.send('to-dual', mux.localPort(dual), LO);
    await waitFor(() => rx.length >= 2, 3000, 'two datagrams');
    const a = rx.find((r) => r.data === 'to-v6')!;
    const b = rx.find((r) => r.data === 'to-dual')!;
    assert.deepEqual([a.v, a.ip, a.ip6, a.port], [6, 0, LO6, s6.address().port]);
    assert.deepEqual([b.v, b.ip, b.port], [4, LO_U32, s4.address().port], 'unmapped');
    // Replies: an IPv6 record, and an IPv4 record sent from the dual-stack (AF_INET6) socket.
    const meta = new Uint32Array(2 * UDP_TX_STRIDE);
    const data = Buffer.from('re-v6re-dual');
    meta.set([only6, 0, 5], 0);
    meta[UDP_TX.IP_VERSION] = 6;
    meta.set(LO6, UDP_TX.DST_IP6);
    meta[UDP_TX.DST_PORT] = a.port;
    const m = UDP_TX_STRIDE;
    meta.set([dual, 5, 7, LO_U32, b.port, 4], m);
    assert.equal(mux.send(data, meta, 2), 2);
    await waitFor(() => back.length >= 2, 3000, 'two replies');
    assert.deepEqual(back.sort((x, y) => x.data.localeCompare(y.data)), [{ from: LO, data: 're-dual' }, { from: '::1', data: 're-v6' }]);
    // An IPv6 destination from an IPv4 socket is a counted send error, not a crash.
    const v4only = mux.bind(LO, 0);
    meta[0] = v4only;
    assert.equal(mux.send(data, meta, 1), 0);
    assert.ok(mux.stats().sendErrors >= 1);
    await sleep(10);
  } finally {
    mux.stop();
    s6.close();
    s4.close();
  }
});
