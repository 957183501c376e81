// Without CAP_NET_RAW and CAP_NET_ADMIN every binding says which capability it lacks. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Capture } from '../../src/io/native';
import {
  runChild,
} from './helpers';

test('without privileges: errors name the missing capability', (t) => {
  if (spawnSync('setpriv', ['--version']).status !== 0) {
    t.skip('setpriv (util-linux) is not installed');
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
    ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'],
  );
  assert.equal(r.status, 0, r.stderr);
  const [inj, cap, listen, connect] = JSON.parse(r.stdout) as string[];
  assert.match(inj, /^Injector: .*needs CAP_NET_RAW/);
  assert.match(cap, /^capture on "lo": permission denied: .*needs CAP_NET_RAW/);
  assert.match(listen, /^listen 127\.0\.0\.1:0: TCP_REPAIR is not permitted: .*needs CAP_NET_ADMIN/);
  assert.match(connect, /^connect 127\.0\.0\.1:9: TCP_REPAIR is not permitted: .*needs CAP_NET_ADMIN/);
});
