// Without CAP_NET_RAW and CAP_NET_ADMIN every binding says which capability it lacks. The child runs
// as the checkout's owner with every capability dropped, so it can read a checkout in a 0700 home.
// Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unprivilegedUnavailable, unprivilegedWrapper } from '../lib/unprivileged';
import { runChild } from './helpers';

test('without privileges: errors name the missing capability', (t) => {
  const why = unprivilegedUnavailable();
  if (why) {
    t.skip(why);
    return;
  }
  const r = runChild(
    `
    const tryIt = (f) => { try { f(); return 'no error'; } catch (e) { return e.message; } };
    const w = new n.SocketWatcher(() => {});
    console.log(JSON.stringify([
      tryIt(() => new n.Injector()),
      tryIt(() => new n.Capture({ device: 'lo', filter: '' }, () => {}, () => {})),
      tryIt(() => w.listen('127.0.0.1', 0, 1)),
      tryIt(() => w.connect('', '127.0.0.1', 9)),
    ]));
    w.stop();`,
    10000,
    unprivilegedWrapper(),
  );
  assert.equal(r.status, 0, r.stderr);
  const [inj, cap, listen, connect] = JSON.parse(r.stdout) as string[];
  assert.match(inj, /^Injector: .*needs CAP_NET_RAW/);
  assert.match(cap, /^capture on "lo": permission denied: .*needs CAP_NET_RAW/);
  assert.match(listen, /^listen 127\.0\.0\.1:0: TCP_REPAIR is not permitted: .*needs CAP_NET_ADMIN/);
  assert.match(connect, /^connect 127\.0\.0\.1:9: TCP_REPAIR is not permitted: .*needs CAP_NET_ADMIN/);
});
