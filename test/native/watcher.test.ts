// The socket watcher's failed dials, dropped events, argument checks and process lifetime. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { WatcherEvent } from '../../src/io/native';
import {
  native, LO, sleep, waitFor, newWatcher, listenOnFreePort, runChild,
} from './helpers';

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
