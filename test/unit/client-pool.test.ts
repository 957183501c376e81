import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientPool, DEFAULT_POOL_OPTIONS, PoolDriver, Slot, SlotState } from '../../src/core/client-pool';
import { FakeTcp } from '../../src/core/fake-tcp';
import { ReplayWindow } from '../../src/core/replay';
import { Link } from '../../src/core/link';

class Recorder implements PoolDriver {
  nextFd = 100;
  failDial = false;
  log: string[] = [];
  dial(slot: Slot): number {
    if (this.failDial) throw new Error('Network is unreachable');
    this.log.push(`dial ${slot.port}`);
    return this.nextFd++;
  }
  closeSocket(fd: number): void {
    this.log.push(`close ${fd}`);
  }
  sendHello(slot: Slot): void {
    this.log.push(`hello ${slot.port}`);
  }
  sendPing(slot: Slot, nonce: number): void {
    this.log.push(`ping ${slot.port} ${nonce}`);
  }
  sendClose(slot: Slot): void {
    this.log.push(`closeframe ${slot.port}`);
  }
  probeQuiet(slot: Slot, afterReset = false): void {
    this.log.push(`quiet ${slot.port}${afterReset ? ' now' : ''}`);
  }
  onUp(slot: Slot, reconnect: boolean): void {
    this.log.push(`up ${slot.port}${reconnect ? ' again' : ''}`);
  }
  onDown(slot: Slot, reason: string, retry: number, wasUp: boolean): void {
    this.log.push(`down ${slot.port} ${retry}${wasUp ? ' was up' : ''}`);
  }
  count(prefix: string): number {
    return this.log.filter((l) => l.startsWith(prefix)).length;
  }
}

const opts = { ...DEFAULT_POOL_OPTIONS, random: () => 0.5 };
const tcp = (now: number): Link => {
  const conn = new FakeTcp({ local: { ip: 1, port: 1 }, remote: { ip: 2, port: 2 }, sndNxt: 1, rcvNxt: 1, now });
  return { fd: 0, maxDatagram: 1400, tcp: conn, path: conn, wire: { txSlot: 0, rxSlot: 1, rxFrom: 0, replay: new ReplayWindow() } };
};

function bringUp(pool: ClientPool, s: Slot, now: number): void {
  pool.onConnected(s.fd, tcp(now), now);
  pool.onJoined(s, now);
}

test('dials every port, goes live after Joined, and spreads round-robin over live connections', () => {
  const d = new Recorder();
  const pool = new ClientPool([10001, 10002, 10003], 1, opts, d);
  pool.start(0);
  assert.equal(d.count('dial'), 3);
  assert.equal(pool.pick(), undefined, 'nothing live before the Joined');
  for (const s of pool.slots) bringUp(pool, s, 10);
  assert.equal(pool.liveCount, 3);
  const ports = Array.from({ length: 6 }, () => pool.pick()!.port);
  assert.deepEqual(ports, [10001, 10002, 10003, 10001, 10002, 10003]);
});

test('resends Hello until answered, and gives up on that dial after the hello timeout', () => {
  const d = new Recorder();
  const pool = new ClientPool([10001], 1, opts, d);
  pool.start(0);
  const s = pool.slots[0];
  pool.onConnected(s.fd, tcp(0), 0);
  for (let t = 10; t <= 1000; t += 10) pool.tick(t);
  assert.ok(d.count('hello') >= 5, `hellos: ${d.count('hello')}`);
  pool.tick(opts.helloTimeoutMs + 1);
  assert.equal(s.state, SlotState.Backoff);
  assert.ok(d.log.includes('close 100'));
});

test('keepalive pings while live; silence past deadAfterMs reconnects with backoff; a good run resets the backoff', () => {
  const d = new Recorder();
  const pool = new ClientPool([10001], 1, opts, d);
  pool.start(0);
  const s = pool.slots[0];
  bringUp(pool, s, 0);
  for (let t = 0; t <= 5000; t += 10) {
    (s.link as Link).tcp.lastRecvAt = t; // the server answers
    pool.tick(t);
  }
  assert.equal(d.count('ping'), Math.floor(5000 / opts.keepaliveMs));
  // Silence.
  let t = 5000;
  while (s.state === SlotState.Live && t < 60000) pool.tick((t += 10));
  assert.equal(t, 5000 + opts.deadAfterMs);
  assert.ok(d.log.includes('closeframe 10001'));
  assert.ok(d.log.includes(`down 10001 ${opts.backoffFirstMs} was up`));
  pool.tick(t + opts.backoffFirstMs);
  assert.equal(s.state, SlotState.Dialing);
  bringUp(pool, s, t + 300);
  assert.ok(d.log.includes('up 10001 again'));
});

test('a dial that fails at start-up is retried with growing delays, forever', () => {
  const d = new Recorder();
  d.failDial = true;
  const pool = new ClientPool([10001], 1, opts, d);
  pool.start(0);
  const s = pool.slots[0];
  let now = 0;
  const delays: number[] = [];
  for (let i = 0; i < 20; i++) {
    assert.equal(s.state, SlotState.Backoff);
    delays.push(s.dueAt - now);
    now = s.dueAt;
    pool.tick(now);
  }
  assert.deepEqual(delays.slice(0, 7), [200, 400, 800, 1600, 3200, 6400, 10000]);
  assert.equal(delays[19], 10000);
  d.failDial = false;
  pool.tick(s.dueAt);
  assert.equal(s.state, SlotState.Dialing);
  bringUp(pool, s, s.dueAt);
  assert.equal(pool.liveCount, 1);
});

test('an unanswered dial times out; reset and FIN take a live connection down', () => {
  const d = new Recorder();
  const pool = new ClientPool([10001, 10002], 1, opts, d);
  pool.start(0);
  pool.tick(opts.dialTimeoutMs);
  assert.ok(pool.slots.every((s) => s.state === SlotState.Backoff));
  const redial = pool.slots[0].dueAt;
  assert.equal(redial, opts.dialTimeoutMs + opts.backoffFirstMs);
  pool.tick(redial);
  for (const s of pool.slots) bringUp(pool, s, redial);
  assert.equal(pool.liveCount, 2);
  pool.onLost(pool.slots[0], 7000, 'connection reset', 'reset');
  assert.equal(pool.liveCount, 1);
  assert.equal(pool.pick()!.port, 10002);
  pool.stop(8000);
  assert.ok(pool.slots.every((s) => s.state === SlotState.Stopped));
  assert.equal(pool.pick(), undefined);
});

test('a live connection that hears nothing is checked once per quietProbeMs, and not while the server talks', () => {
  const d = new Recorder();
  const pool = new ClientPool([10001], 1, { ...opts, keepaliveMs: 2000, deadAfterMs: 6500, quietProbeMs: 1000 }, d);
  pool.start(0);
  const s = pool.slots[0];
  bringUp(pool, s, 0);
  const heard = (now: number) => ((s.link!.path as FakeTcp).lastRecvAt = now);
  // The server answers within 100 ms of every tick: never quiet for a second.
  for (let now = 100; now <= 5000; now += 100) {
    pool.tick(now);
    heard(now);
  }
  assert.equal(d.count('quiet'), 0, 'no check while the server is heard');
  // Silence from 5000 on: a check at 6000, 7000, 8000..., never two within a second, until deadAfterMs ends it.
  const at: number[] = [];
  for (let now = 5100; now <= 12000; now += 100) {
    const before = d.count('quiet');
    pool.tick(now);
    if (d.count('quiet') > before) at.push(now);
  }
  assert.ok(at.length >= 4, `checked at ${at.join(', ')}`);
  assert.ok(at[0] >= 6000 && at[0] <= 6100, `first check at ${at[0]}`);
  for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= 1000, `checks at ${at.join(', ')}`);
  assert.equal(d.count('down'), 1, 'silence still ends the connection at deadAfterMs');
  assert.notEqual(s.state, SlotState.Live);
  assert.ok(at.every((t) => t < 11500), 'no check after the slot went down');
});

test('a reset on one connection checks every other live connection at once (a restarted server), at most every 100 ms', () => {
  const d = new Recorder();
  const pool = new ClientPool([10001, 10002, 10003, 10004], 1, { ...opts, keepaliveMs: 2000, deadAfterMs: 6500, quietProbeMs: 1000 }, d);
  pool.start(0);
  for (const s of pool.slots) bringUp(pool, s, 0);
  const [a, b] = pool.slots;
  pool.onLost(a, 100, 'connection reset', 'reset');
  assert.deepEqual(d.log.filter((l) => l.startsWith('quiet')), ['quiet 10002 now', 'quiet 10003 now', 'quiet 10004 now']);
  pool.onLost(b, 150, 'connection reset', 'reset');
  assert.equal(d.count('quiet'), 3, 'a second reset 50 ms later checks nothing again');
  pool.onLost(pool.slots[2], 250, 'connection reset', 'reset');
  assert.deepEqual(d.log.filter((l) => l.startsWith('quiet')).slice(3), ['quiet 10004 now'], 'only the one still live, 150 ms after its check');
  const before = d.count('quiet');
  pool.onLost(pool.slots[3], 300, 'the server said Close', 'close');
  assert.equal(d.count('quiet'), before, 'a Close is no sign of a restart');
});
