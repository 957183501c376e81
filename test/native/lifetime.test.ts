// Process and thread lifetime with capture, watcher and injector handles open, closed or collected. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Capture } from '../../src/io/native';
import {
  ADDON_FILE, runChild, ACK_TO_PORT_9,
} from './helpers';

test('lifetime: closed or idle handles do not keep the process alive; exit with open handles is clean', () => {
  // A closed capture and an idle watcher let the process end by itself.
  let r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp port 9' }, () => {}, () => {});
    c.close();
    const w = new n.SocketWatcher(() => {});
    const inj = new n.Injector();
    console.log('ok');`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'ok');

  // process.exit() with everything open, a listener, a pending dial and a capture mid-stream.
  r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp' }, () => {}, () => {});
    const w = new n.SocketWatcher(() => {});
    const lfd = w.listen('127.0.0.1', 0, 8);
    w.connect('', '127.0.0.1', 9);
    const inj = new n.Injector();
    const meta = ${ACK_TO_PORT_9};
    setTimeout(() => { inj.send(Buffer.alloc(0), meta, 1); process.exit(3); }, 50);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 3, r.stderr);

  // An open capture is a live I/O source: it keeps the process alive until closed.
  r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp port 9' }, () => {}, () => {});
    setTimeout(() => { console.log('still alive'); c.close(); }, 300);`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'still alive');
});

test('lifetime: close() from inside onBatch releases the loop; a collected capture is harmless', () => {
  const r = runChild(`
    const gc = require('vm').runInNewContext('gc', Object.assign(require('v8').setFlagsFromString('--expose-gc') || {}));
    let seen = 0;
    let c = new n.Capture({ device: 'lo', filter: 'tcp and dst port 9' }, (data, meta, count) => {
      seen += count;
      c.close();
      c.close();
    }, () => {});
    const inj = new n.Injector();
    inj.send(Buffer.alloc(0), ${ACK_TO_PORT_9}, 1);
    inj.close();
    process.on('exit', () => console.log('exit seen=' + seen));
    setTimeout(() => { c = null; gc(); gc(); }, 50);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'exit seen=1');
});

test('lifetime: a capture left open in a worker thread does not stop the worker from ending', () => {
  const r = runChild(`
    const { Worker } = require('worker_threads');
    const w = new Worker(\`
      const n = require(\${JSON.stringify(require.resolve(${JSON.stringify(ADDON_FILE)}))});
      const { parentPort } = require('worker_threads');
      const c = new n.Capture({ device: 'lo', filter: 'tcp and dst port 9' }, () => parentPort.postMessage('batch'), () => {});
      const inj = new n.Injector();
      inj.send(Buffer.alloc(0), ${ACK_TO_PORT_9}, 1);
    \`, { eval: true });
    w.on('message', (m) => { console.log(m); w.terminate(); });
    w.on('exit', () => console.log('worker ended'));`);
  assert.equal(r.signal, null, `child hung or crashed: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'batch\nworker ended');
});

test('lifetime: a capture rides out its interface going down; one that goes away is reported once and released', (t) => {
  if (spawnSync('unshare', ['--version']).status !== 0 || spawnSync('ip', ['-V']).status !== 0) {
    t.skip('unshare or ip is missing');
    return;
  }
  // In a private network namespace: a veth whose far end has no address, so datagrams to a fixed
  // neighbour leave through the captured side.
  const r = runChild(
    `
    const { execSync } = require('child_process');
    const sh = (cmd) => execSync(cmd, { stdio: 'inherit' });
    const neigh = 'ip neigh replace 10.9.0.3 lladdr 02:00:00:00:00:01 dev rsockcap0';
    sh('ip link add rsockcap0 type veth peer name rsockcap1 && ip addr add 10.9.0.1/24 dev rsockcap0' +
       ' && ip link set rsockcap0 up && ip link set rsockcap1 up && ' + neigh);
    const log = [];
    const c = new n.Capture({ device: 'rsockcap0', filter: 'udp and dst port 7777', inboundOnly: false },
      (data, meta, count) => log.push('batch ' + count), (e) => log.push(e.message));
    const s = require('dgram').createSocket('udp4');
    const send = () => s.send('x', 7777, '10.9.0.3');
    const steps = [
      send,
      () => sh('ip link set rsockcap0 down'),
      () => sh('ip link set rsockcap0 up && ' + neigh),
      send,
      () => { s.close(); sh('ip link del rsockcap0'); },
    ];
    steps.forEach((f, i) => setTimeout(f, 100 + 150 * i));
    // Nothing is left to keep the loop alive once the capture has reported its end.
    process.on('exit', () => { console.log(JSON.stringify(log)); c.close(); });`,
    10000,
    ['unshare', '--net', '--'],
  );
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), ['batch 1', 'batch 1', 'capture on "rsockcap0": The interface disappeared']);
});

test('lifetime: a throwing batch callback surfaces as an uncaught exception', () => {
  const r = runChild(`
    const c = new n.Capture({ device: 'lo', filter: 'tcp and dst port 9' }, () => { throw new Error('boom from onBatch'); }, () => {});
    const inj = new n.Injector();
    inj.send(Buffer.alloc(0), ${ACK_TO_PORT_9}, 1);`);
  assert.equal(r.signal, null, `child hung: ${r.stderr}`);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /boom from onBatch/);
});
