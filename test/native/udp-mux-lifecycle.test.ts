// UdpMux close/stop, argument checks, process and worker lifetime. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { UdpMux } from '../../src/io/native';
import {
  native, LO, LO_U32, NATIVE_JS, sleep, waitFor, MuxRecorder, udpTxMeta, packUdpTx, dgramSocket, closeDgram, bindsAgain,
} from './helpers';

test('udp mux: close() and stop() semantics', async () => {
  const r = new MuxRecorder();
  const { sock: sender, port: senderPort } = await dgramSocket();
  try {
    const a = r.mux.bind(LO, 0);
    const b = r.mux.bind(LO, 0);
    const portB = r.mux.localPort(b);
    r.mux.close(a);
    r.mux.close(a); // idempotent
    r.mux.close(12345); // unknown: ignored
    r.mux.close(-1);
    assert.equal(r.mux.stats().sockets, 1);
    assert.throws(() => r.mux.localPort(a), RangeError);
    // Sending on a closed id is counted, not thrown, and does not stop the rest of the batch.
    const { data, meta } = packUdpTx([
      { socket: a, data: Buffer.from('x'), dstIp: LO_U32, dstPort: senderPort },
      { socket: a, data: Buffer.from('y'), dstIp: LO_U32, dstPort: senderPort },
      { socket: b, data: Buffer.from('z'), dstIp: LO_U32, dstPort: senderPort },
    ]);
    assert.equal(r.mux.send(data, meta, 3), 1);
    let st = r.mux.stats();
    assert.equal(st.sendErrors, 2);
    assert.match(st.lastError, /not open/);
    // The lowest free id is reused, with a new socket.
    const c = r.mux.bind(LO, 0);
    assert.equal(c, a);
    sender.send(Buffer.from('to c'), r.mux.localPort(c), LO);
    sender.send(Buffer.from('to b'), portB, LO);
    await waitFor(() => r.rx.length >= 2, 5000, 'two datagrams');
    assert.deepEqual(r.rx.map((d) => `${d.socket}:${d.data}`).sort(), [`${b}:to b`, `${c}:to c`].sort());

    r.mux.stop();
    r.mux.stop(); // idempotent
    st = r.mux.stats();
    assert.equal(st.sockets, 0);
    assert.throws(() => r.mux.bind(LO, 0), /stopped/);
    assert.throws(() => r.mux.connect(LO, 9), /stopped/);
    assert.throws(() => r.mux.send(data, meta, 3), /stopped/);
    r.mux.close(b); // ignored after stop
    // Its port is free again.
    await bindsAgain(portB);
    assert.deepEqual(r.errors, []);
  } finally {
    closeDgram(sender);
    r.mux.stop();
  }
});

test('udp mux: bad arguments throw clear errors and never crash', async () => {
  const Mux = native.UdpMux as unknown as new (...args: unknown[]) => UdpMux;
  assert.throws(() => new Mux(), { name: 'TypeError', message: /onBatch must be a function/ });
  assert.throws(() => new Mux(() => {}, 5), { name: 'TypeError', message: /opts must be an object/ });
  assert.throws(() => new Mux(() => {}, { maxBatch: 0 }), { name: 'RangeError', message: /maxBatch/ });
  assert.throws(() => new Mux(() => {}, { rcvBuf: 1.5 }), { name: 'TypeError', message: /rcvBuf/ });
  assert.throws(() => new Mux(() => {}, { sndBuf: 'big' }), { name: 'TypeError', message: /sndBuf/ });
  assert.throws(() => (native.UdpMux as unknown as (f: unknown) => void)(() => {}), TypeError);

  const typed = new native.UdpMux(() => {});
  // The same object without its types, to pass what JS callers could.
  const mux = typed as unknown as Record<string, (...a: unknown[]) => unknown>;
  const holder = dgram.createSocket('udp4');
  try {
    assert.throws(() => mux.bind(), { name: 'TypeError', message: /ip must be a string/ });
    assert.throws(() => mux.bind('nope', 0), { name: 'TypeError', message: /not an IPv4 or IPv6 address/ });
    assert.throws(() => mux.bind(LO, 70000), { name: 'RangeError', message: /port must be between 0 and 65535/ });
    assert.throws(() => mux.bind(LO, -1), RangeError);
    assert.throws(() => mux.bind(LO, '1'), TypeError);
    assert.throws(() => mux.connect('', 53), { name: 'TypeError', message: /must not be empty/ });
    assert.throws(() => mux.connect(LO, 0), { name: 'RangeError', message: /port must be between 1 and 65535/ });
    assert.throws(() => mux.localPort('0'), TypeError);
    assert.throws(() => mux.localPort(0), { name: 'RangeError', message: /socket 0 is not open/ });
    assert.throws(() => mux.close(1.5), TypeError);
    assert.throws(() => mux.close(undefined), TypeError);

    // Address in use: the message names the address.
    await new Promise<void>((resolve) => holder.bind(0, LO, resolve));
    const taken = holder.address().port;
    assert.throws(() => typed.bind(LO, taken), { message: `udp bind ${LO}:${taken}: Address already in use` });
    assert.throws(() => mux.bind('192.0.2.1', 0), /udp bind 192\.0\.2\.1:0: Cannot assign requested address/);

    const id = typed.bind(LO, 0);
    type Rec = [socket: number, offset: number, length: number, dstIp: number, dstPort: number];
    const good = (...recs: Rec[]) =>
      udpTxMeta(recs.map(([socket, offset, length, dstIp, dstPort]) => ({ socket, offset, length, dstIp, dstPort })));
    const data = Buffer.alloc(100);
    assert.throws(() => mux.send('x', good([id, 0, 1, LO_U32, 9]), 1), { name: 'TypeError', message: /data must be a Buffer/ });
    assert.throws(() => mux.send(data, [id, 0, 1, LO_U32, 9], 1), { name: 'TypeError', message: /meta must be a Uint32Array/ });
    assert.throws(() => mux.send(data, new Int32Array(5), 1), TypeError);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9]), 2), { name: 'RangeError', message: /count/ });
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9]), -1), RangeError);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9]), 0.5), TypeError);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 9], [id, 99, 2, LO_U32, 9]), 2), {
      name: 'RangeError',
      message: /datagram 1: range outside data/,
    });
    assert.throws(() => mux.send(data, good([id, 0xffffffff, 2, LO_U32, 9]), 1), /range outside data/);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 65536]), 1), /dstPort out of range/);
    assert.throws(() => mux.send(data, good([id, 0, 1, LO_U32, 0]), 1), /dstPort must not be 0/);
    assert.throws(() => mux.send(Buffer.alloc(70000), good([id, 0, 65508, LO_U32, 9]), 1), /longer than a UDP datagram/);
    // Nothing was sent by the rejected batches.
    assert.equal(typed.stats().sent, 0);
    assert.equal(typed.stats().sendErrors, 0);
    // An unconnected socket without a destination: a kernel error, counted.
    assert.equal(typed.send(data, good([id, 0, 1, 0, 0]), 1), 0);
    assert.equal(typed.stats().sendErrors, 1);
    assert.match(typed.stats().lastError, /Destination address required/);
  } finally {
    closeDgram(holder);
    typed.stop();
  }
});

test('udp mux: an open mux does not keep the process alive', () => {
  const nativeJs = NATIVE_JS;
  const script = `
    const { loadNative } = require(${JSON.stringify(nativeJs)});
    const mux = new (loadNative().UdpMux)(() => {});
    mux.connect('127.0.0.1', 9);
    mux.bind('127.0.0.1', 0);
    console.log('ok');
  `;
  const res = spawnSync(process.execPath, ['-e', script], { timeout: 10000, encoding: 'utf8' });
  assert.equal(res.error, undefined, 'exited on its own within 10 s');
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'ok');
});

test('udp mux: a worker thread that ends with its mux open tears it down cleanly', async () => {
  const nativeJs = NATIVE_JS;
  const run = (code: string, terminate: boolean) =>
    new Promise<number>((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      w.on('error', reject);
      w.on('message', () => {
        if (terminate) void w.terminate();
      });
      w.on('exit', resolve);
    });
  const body = `
    const { parentPort } = require('worker_threads');
    const { loadNative } = require(${JSON.stringify(nativeJs)});
    const mux = new (loadNative().UdpMux)(() => parentPort.postMessage('batch'));
    const id = mux.bind('127.0.0.1', 0);
    mux.connect('127.0.0.1', 9);
    const s = require('dgram').createSocket('udp4');
    s.send('x', mux.localPort(id), '127.0.0.1', () => s.close());
  `;
  const epollFds = () =>
    fs.readdirSync('/proc/self/fd').filter((f) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${f}`).includes('eventpoll');
      } catch {
        return false; // the directory's own fd, gone by now
      }
    }).length;
  await sleep(50); // muxes stopped by earlier tests finish closing on a later loop turn
  const before = epollFds();
  for (let i = 0; i < 5; i++) {
    // Ends on its own once the datagram is in (the mux does not keep it alive) ...
    assert.equal(await run(body, false), 0);
    // ... or is terminated while busy.
    assert.equal(await run(body + 'setInterval(() => {}, 1000);', true), 1);
  }
  // Each mux's epoll descriptor was closed with it (each worker's loop has one of its own too).
  await sleep(50);
  assert.equal(epollFds(), before);
});
