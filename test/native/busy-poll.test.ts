// Busy polling (opts.busyPollUs of UdpMux and Capture, --busy-poll): after input the event loop keeps
// polling without sleeping for the window, and sleeps again once it is over. Observed from outside the
// loop's code: the main thread's voluntary context switches (a thread that sleeps in epoll_wait
// switches voluntarily; one that polls does not) and its CPU time: a loop asleep in epoll_wait for the
// span cannot spend most of it on a CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { LO, NATIVE_JS, sleep, dgramSocket, closeDgram, native } from './helpers';
import type { UdpMux } from '../../src/io/native';

const WINDOW_US = 10000;
/** Measured from the batch: well inside the window. */
const SPAN_MS = 8;
/** CPU over the span of a loop that polls (it may be preempted on a busy machine), and of one that sleeps. */
const BUSY_CPU_MS = 3;
const IDLE_CPU_MS = 2;

interface ThreadSample { voluntary: number; cpuMs: number }

/** This (the JS) thread's voluntary context switches and CPU time. */
function sampleThread(): ThreadSample {
  const status = fs.readFileSync('/proc/thread-self/status', 'utf8');
  const voluntary = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)![1]);
  // schedstat: nanoseconds on a CPU first.
  const cpuMs = Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  return { voluntary, cpuMs };
}

/**
 * What a batch callback calls: samples the thread then, and again `spanMs` later from a timer armed
 * in the callback itself (without busy polling the loop sleeps in epoll_wait until it fires).
 */
class Probe {
  private wait: Promise<[ThreadSample, ThreadSample]> | null = null;
  private resolve: ((s: [ThreadSample, ThreadSample]) => void) | null = null;
  constructor(private readonly spanMs: number) {}

  arm(): Promise<[ThreadSample, ThreadSample]> {
    this.wait = new Promise((r) => { this.resolve = r; });
    return this.wait;
  }

  readonly onInput = (): void => {
    const resolve = this.resolve;
    if (!resolve) return;
    this.resolve = null;
    const start = sampleThread();
    setTimeout(() => resolve([start, sampleThread()]), this.spanMs);
  };
}

/** Sends one datagram to `port`: the thread over the span after its batch, and over a later quiet span. */
async function measureAfterInput(port: number, probe: Probe, spanMs: number) {
  const { sock } = await dgramSocket();
  try {
    const spanned = probe.arm();
    sock.send(Buffer.from('wake'), port, LO);
    const [start, end] = await Promise.race([spanned, sleep(5000).then(() => assert.fail('the datagram did not arrive within 5 s'))]);
    await sleep(50);
    const quietStart = sampleThread();
    await new Promise((r) => setTimeout(r, spanMs));
    const quietEnd = sampleThread();
    return {
      sleeps: end.voluntary - start.voluntary,
      cpuMs: end.cpuMs - start.cpuMs,
      quietSleeps: quietEnd.voluntary - quietStart.voluntary,
      quietCpuMs: quietEnd.cpuMs - quietStart.cpuMs,
    };
  } finally {
    closeDgram(sock);
  }
}

type Measured = Awaited<ReturnType<typeof measureAfterInput>>;

/**
 * After a warm-up round (the code's first runs cost CPU of their own), up to three measurements, the
 * first that shows `ok`: another process on a busy machine can take the CPU for one span, but a loop
 * that sleeps (or polls) when it should not does so every time.
 */
async function measure(port: number, probe: Probe, ok: (m: Measured) => boolean): Promise<Measured> {
  await measureAfterInput(port, probe, SPAN_MS);
  let m = await measureAfterInput(port, probe, SPAN_MS);
  for (let i = 1; i < 3 && !ok(m); i++) m = await measureAfterInput(port, probe, SPAN_MS);
  return m;
}

const sleptThrough = (m: Measured) => m.sleeps >= 1 && m.cpuMs < IDLE_CPU_MS;
// A futex wait for a V8 helper thread can count one sleep.
const polledThrough = (m: Measured) => m.cpuMs >= BUSY_CPU_MS && m.sleeps <= 1;
const sleptAfter = (m: Measured) => m.quietSleeps >= 1 && m.quietCpuMs < IDLE_CPU_MS;

test('udp mux: with busyPollUs the loop polls without sleeping for the window after input, then sleeps again', async () => {
  const results: Record<string, Measured> = {};
  for (const busyPollUs of [0, WINDOW_US]) {
    const probe = new Probe(SPAN_MS);
    const mux = new native.UdpMux(probe.onInput, { busyPollUs });
    try {
      const port = mux.localPort(mux.bind(LO, 0));
      results[busyPollUs] = await measure(port, probe, (m) => (busyPollUs ? polledThrough(m) && sleptAfter(m) : sleptThrough(m)));
    } finally {
      mux.stop();
    }
  }
  const off = results[0];
  const on = results[WINDOW_US];
  assert.ok(sleptThrough(off), `without busy polling the loop sleeps until the timer, using little CPU (${JSON.stringify(off)})`);
  assert.ok(polledThrough(on), `with it, within the window the loop polls on a CPU, without sleeping (${JSON.stringify(on)})`);
  assert.ok(sleptAfter(on), `after the window it sleeps again (${JSON.stringify(on)})`);
});

test('capture: with busyPollUs the loop polls without sleeping for the window after a packet', async () => {
  const { sock: target, port } = await dgramSocket();
  const probe = new Probe(SPAN_MS);
  const cap = new native.Capture({ device: 'lo', filter: `udp and dst port ${port}`, busyPollUs: WINDOW_US },
    probe.onInput, (e) => assert.fail(e));
  try {
    const r = await measure(port, probe, (m) => polledThrough(m) && sleptAfter(m));
    assert.ok(polledThrough(r), `within the window the loop polls on a CPU, without sleeping (${JSON.stringify(r)})`);
    assert.ok(sleptAfter(r), `after the window it sleeps again (${JSON.stringify(r)})`);
  } finally {
    cap.close();
    closeDgram(target);
  }
});

test('busyPollUs: bad values throw clear errors', () => {
  const Mux = native.UdpMux as unknown as new (...args: unknown[]) => UdpMux;
  assert.throws(() => new Mux(() => {}, { busyPollUs: WINDOW_US + 1 }), { name: 'RangeError', message: /busyPollUs/ });
  assert.throws(() => new Mux(() => {}, { busyPollUs: -1 }), { name: 'RangeError', message: /busyPollUs/ });
  assert.throws(() => new Mux(() => {}, { busyPollUs: 'fast' }), { name: 'TypeError', message: /busyPollUs/ });
  const noop = () => {};
  assert.throws(() => new native.Capture({ device: 'lo', filter: 'udp port 9', busyPollUs: 1e6 }, noop, noop), { name: 'RangeError', message: /busyPollUs/ });
  assert.throws(() => new native.Capture({ device: 'lo', filter: 'udp port 9', busyPollUs: 2.5 }, noop, noop), { name: 'TypeError', message: /busyPollUs/ });
});

test('udp mux: busy polling does not keep the process alive', () => {
  const script = `
    const dgram = require('dgram');
    const { loadNative } = require(${JSON.stringify(NATIVE_JS)});
    const sender = dgram.createSocket('udp4');
    const mux = new (loadNative().UdpMux)(() => { console.log('got'); sender.close(); }, { busyPollUs: ${WINDOW_US} });
    const port = mux.localPort(mux.bind('127.0.0.1', 0));
    sender.send('x', port, '127.0.0.1');
  `;
  const res = spawnSync(process.execPath, ['-e', script], { timeout: 10000, encoding: 'utf8' });
  assert.equal(res.error, undefined, 'exited on its own within 10 s');
  assert.equal(res.status, 0, res.stderr);
  assert.equal(res.stdout.trim(), 'got');
});
