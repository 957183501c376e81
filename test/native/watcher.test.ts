// The socket watcher's handshake details, hand-back, failed dials, dropped events, argument checks and
// process lifetime. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { HandshakeInfo, WatcherEvent } from '../../src/io/native';
import {
  native, LO, SYN, ACK, sleep, waitFor, newWatcher, listenOnFreePort, runChild, Recorder,
} from './helpers';

type Accepted = Extract<WatcherEvent, { type: 'accepted' }>;
type Connected = Extract<WatcherEvent, { type: 'connected' }>;

/** One watcher dial to one of its own listeners on lo: both ends' events. */
async function dialPair(w: ReturnType<typeof newWatcher>, port: number): Promise<{ acc: Accepted; con: Connected }> {
  const before = w.events.length;
  const cfd = w.watcher.connect(LO, LO, port);
  await waitFor(() => w.events.length >= before + 2, 3000, "'accepted' and 'connected'");
  const fresh = w.events.slice(before);
  const con = fresh.find((e) => e.type === 'connected' && e.fd === cfd) as Connected;
  const acc = fresh.find((e) => e.type === 'accepted' && e.remotePort === con?.localPort) as Accepted;
  assert.ok(acc && con, `got ${JSON.stringify(fresh)}`);
  return { acc, con };
}

const sysctl = (name: string) => Number(fs.readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8'));

test('watcher: handshake info: timestamps negotiated, TSval as on the wire, TTL, receive window', async () => {
  const w = newWatcher();
  let rec: Recorder | null = null;
  try {
    const { port } = listenOnFreePort(w.watcher);
    rec = new Recorder(`tcp and port ${port}`);
    const { acc, con } = await dialPair(w, port);
    assert.equal(sysctl('tcp_timestamps'), 1, 'this test assumes the default net.ipv4.tcp_timestamps=1');
    for (const h of [acc, con] as HandshakeInfo[]) {
      assert.equal(h.tsOk, true);
      assert.equal(h.ttl, sysctl('ip_default_ttl'));
      assert.ok(Number.isInteger(h.tsVal) && h.tsVal >= 0 && h.tsVal <= 0xffffffff, `tsVal ${h.tsVal}`);
      assert.ok(h.rcvWnd > 0 && h.rcvWnd < 2 ** 30, `rcvWnd ${h.rcvWnd}`);
    }
    assert.equal(sysctl('ip_default_ttl'), 64, 'TTL 64 with the default sysctl');

    // The kernels' own segments: the SYN-ACK (server) and the handshake's last ACK (client) were
    // sent just before each side learned the handshake; their TSvals are at most that much older.
    await waitFor(() => rec!.segs.length >= 3, 3000, 'the handshake');
    const synAck = rec.segs.find((x) => x.flags === (SYN | ACK))!;
    const lastAck = rec.segs.find((x) => x.flags === ACK && x.sport === con.localPort)!;
    assert.ok(synAck?.ts && lastAck?.ts, `timestamps on the wire: ${JSON.stringify(rec.segs.map((x) => x.ts))}`);
    // TCP_TIMESTAMP comes rounded down to even: it may read 1 below a TSval of the same millisecond.
    const lag = (h: HandshakeInfo, seen: number) => ((h.tsVal - seen) | 0);
    assert.ok(lag(acc, synAck.ts.val) >= -1 && lag(acc, synAck.ts.val) < 500, `server: ${acc.tsVal} vs ${synAck.ts.val}`);
    assert.ok(lag(con, lastAck.ts.val) >= -1 && lag(con, lastAck.ts.val) < 500, `client: ${con.tsVal} vs ${lastAck.ts.val}`);
    // Both windows as the kernels advertised them: the SYN-ACK's unscaled, the last ACK's scaled.
    assert.equal(synAck.window, Math.min(acc.rcvWnd, 65535), `server rcvWnd ${acc.rcvWnd}`);
    assert.equal(lastAck.window, con.rcvWnd >> con.rcvWscale, `client rcvWnd ${con.rcvWnd} >> ${con.rcvWscale}`);

    // The TS clock ticks in milliseconds: handed back 100 ms later, the server kernel's first data
    // segment carries a TSval ~100 above what the watcher read. (Each connection has its own offset,
    // ports included, so a second connection would not tell.)
    const learnedAt = Date.now();
    await sleep(100);
    w.watcher.handBack(acc.fd);
    const server = new net.Socket({ fd: acc.fd, readable: true, writable: true });
    server.on('error', () => {});
    const sentAt = Date.now();
    server.write('x');
    await waitFor(() => rec!.segs.some((x) => x.sport === port && x.payload.length > 0), 3000, "the server kernel's data");
    const data = rec.segs.find((x) => x.sport === port && x.payload.length > 0)!;
    const ticks = (data.ts!.val - acc.tsVal) | 0;
    const ms = sentAt - learnedAt;
    assert.ok(ticks >= 100 && Math.abs(ticks - ms) <= 20, `TSval moved ${ticks} in ~${ms} ms`);
    server.destroy();
  } finally {
    rec?.close();
    w.watcher.stop();
  }
});

test('watcher: handshake info follows the namespace: tcp_timestamps=0, ip_default_ttl=77', () => {
  // A namespace of its own, gone when the child exits; loopback up, then the two sysctls.
  const wrapper = ['unshare', '--net', 'sh', '-c',
    'ip link set lo up && sysctl -qw net.ipv4.tcp_timestamps=0 net.ipv4.ip_default_ttl=77 && exec "$0" "$@"'];
  const r = runChild(`
    const evs = [];
    const w = new n.SocketWatcher((ev) => {
      evs.push(ev);
      if (evs.length === 2) { console.log(JSON.stringify(evs)); w.stop(); }
    });
    const port = 20000 + Math.floor(Math.random() * 30000);
    w.listen('127.0.0.1', port, 4);
    w.connect('127.0.0.1', '127.0.0.1', port);`, 10000, wrapper);
  assert.equal(r.status, 0, r.stderr);
  const evs = JSON.parse(r.stdout) as WatcherEvent[];
  assert.deepEqual(evs.map((e) => e.type).sort(), ['accepted', 'connected']);
  for (const e of evs as HandshakeInfo[]) {
    assert.equal(e.tsOk, false, 'no timestamps negotiated');
    assert.equal(e.ttl, 77);
    assert.ok(e.rcvWnd > 0);
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
    // "" is IPv6 and IPv4 at once: the IPv4 listener's port is taken for it too.
    assert.throws(() => watcher.listen('', port, 16), /^Error: listen \[::\]:\d+: Address already in use$/);
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

test('watcher: keeps the process alive while it listens or has an event to deliver, not longer', () => {
  // The timer is unref'd: only the listener can keep the process alive until it fires.
  let r = runChild(`
    const w = new n.SocketWatcher(() => {});
    const lfd = w.listen('127.0.0.1', 0, 4);
    setTimeout(() => { console.log('still alive'); w.close(lfd); }, 300).unref();`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'still alive');

  // A dial that fails inside connect() is reported on a later loop turn, before the process ends.
  r = runChild(`
    const w = new n.SocketWatcher((ev) => { console.log(ev.type + ' ' + ev.errno); w.close(ev.fd); });
    w.connect('', '224.0.0.1', 80);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'failed 101');
});

test('watcher: handBack gives a filtered connection back to the kernel; the peer retransmits what was dropped', async () => {
  const w = newWatcher();
  let rec: Recorder | null = null;
  let client: net.Socket | null = null;
  let server: net.Socket | null = null;
  try {
    const { fd: lfd, port } = listenOnFreePort(w.watcher);
    rec = new Recorder(`tcp and port ${port}`);
    const request = 'GET / HTTP/1.1\r\nHost: example.com\r\n\r\n';
    client = net.connect(port, LO);
    client.on('error', () => {});
    const answer: Buffer[] = [];
    client.on('data', (d) => answer.push(d));
    const clientEnded = new Promise<void>((resolve) => client!.once('end', resolve));
    await new Promise<void>((resolve) => client!.once('connect', resolve));
    client.write(request);
    await waitFor(() => w.events.some((e) => e.type === 'accepted'), 3000, "'accepted'");
    const acc = w.events.find((e) => e.type === 'accepted') as Accepted;

    // While the filter is on, the request is dropped: the client sends (and resends) it, the server
    // kernel answers nothing at all after its SYN-ACK.
    await sleep(300);
    const fromServer = () => rec!.segs.filter((x) => x.sport === port && !(x.flags & SYN));
    assert.ok(rec.segs.some((x) => x.dport === port && x.payload.toString() === request), 'the request was on the wire');
    assert.deepEqual(fromServer(), [], 'nothing acknowledged while filtered');

    assert.throws(() => w.watcher.handBack(lfd), /handBack\(\d+\): not an established connection/);
    w.watcher.handBack(acc.fd);
    assert.throws(() => w.watcher.handBack(acc.fd), /handBack\(\d+\): not a socket of this watcher/);
    assert.throws(() => w.watcher.handBack(999999), /not a socket of this watcher/);
    w.watcher.close(acc.fd); // no longer the watcher's: left alone

    server = new net.Socket({ fd: acc.fd, readable: true, writable: true });
    let got = '';
    server.on('data', (d) => (got += d.toString()));
    await waitFor(() => got === request, 5000, 'the retransmitted request');
    server.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    await clientEnded;
    assert.equal(Buffer.concat(answer).toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi');
    assert.ok(fromServer().some((x) => x.ack === ((acc.rcvNxt + request.length) >>> 0)), 'the kernel ACKed the request');
    assert.deepEqual(rec.errors, []);
  } finally {
    client?.destroy();
    server?.destroy();
    rec?.close();
    w.watcher.stop();
  }
  assert.throws(() => w.watcher.handBack(3), /stopped/);
});
