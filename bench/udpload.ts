// bench/udpload.c (the load generator, counting target and ping-pong), compiled with gcc -O2 into
// bench/build/, and typed wrappers for its commands inside the benchmark's namespaces. Every
// command is bounded in time (exec's timeout, udpload's own --max-seconds).
import * as fs from 'fs';
import * as path from 'path';
import type { PairRole } from '../test/lib/direct-pair';
import type { BenchHost } from './host';
import { exec, Proc } from '../test/lib/proc';
import { REPO } from '../test/lib/rsock';
import { kv } from './results';

export const UDPLOAD_SRC = path.join(REPO, 'bench', 'udpload.c');
export const UDPLOAD = path.join(REPO, 'bench', 'build', 'udpload');

/** Compiles bench/udpload.c when the binary is missing or older than the source. */
export async function buildUdpload(): Promise<void> {
  fs.mkdirSync(path.dirname(UDPLOAD), { recursive: true });
  const fresh = fs.existsSync(UDPLOAD) && fs.statSync(UDPLOAD).mtimeMs >= fs.statSync(UDPLOAD_SRC).mtimeMs;
  if (fresh) return;
  const tmp = `${UDPLOAD}.${process.pid}`;
  const r = await exec(['gcc', '-O2', '-Wall', '-o', tmp, UDPLOAD_SRC], { allowFail: true, timeoutMs: 60_000 });
  if (r.code !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`cannot compile bench/udpload.c:\n${r.stderr.trim()}`);
  }
  fs.renameSync(tmp, UDPLOAD);
}

/** udpload serve in the server ns: counts DATA per run, echoes pings, answers queries. */
export async function startServe(pair: BenchHost, bind: string, maxSeconds: number): Promise<Proc> {
  const p = pair.spawn('server', [...pin, UDPLOAD, 'serve', '--bind', bind, '--max-seconds', String(maxSeconds)], { name: 'serve' });
  await p.waitFor(/^ready/, 3000);
  return p;
}

/** A CPU list the load generator and the sink run on (taskset -c), or none: set by the workers comparison. */
let pin: string[] = [];
const taskset = (cpus: string | null) => (cpus ? ['taskset', '-c', cpus] : []);
export function pinLoad(cpus: string | null): void {
  pin = taskset(cpus);
}

/** A CPU list the ping-pong's sender runs on, or none: set by the latency timeline's --pin. */
let pingPin: string[] = [];
export function pinPing(cpus: string | null): void {
  pingPin = taskset(cpus);
}

export interface SendResult { sent: number; target: number; elapsed: number; errors: number; out: string }

/** udpload send from the client ns: `rate` datagrams/s (0: flood) of `size` bytes for `secs`, over `flows` sockets. */
export async function send(pair: BenchHost, dst: string, rate: number, secs: number, flows: number, sportBase: number, run: number,
  size = 1200): Promise<SendResult> {
  const r = await pair.exec('client', [...pin, UDPLOAD, 'send', '--dst', dst, '--rate', String(rate), '--duration', String(secs),
    '--flows', String(flows), '--sport-base', String(sportBase), '--run', String(run), '--size', String(size)], { allowFail: true, timeoutMs: (secs * 1.1 + 8) * 1000 })
    .catch((e: Error) => ({ stdout: '', stderr: e.message }));
  const out = `${r.stdout}${r.stderr}`;
  const v = kv(out);
  return { sent: Number(v.sent) || 0, target: Number(v.target) || 0, elapsed: Number(v.elapsed) || 0, errors: Number(v.errors) || 0, out };
}

export interface QueryResult { recv: number; uniq: number; flows: number; line: string }

/** udpload query in the server ns: the target's counts for one run id. */
export async function query(pair: BenchHost, dst: string, run: number): Promise<QueryResult> {
  const r = await pair.exec('server', [...pin, UDPLOAD, 'query', '--dst', dst, '--run', String(run)], { allowFail: true, timeoutMs: 5000 })
    .catch((e: Error) => ({ stdout: '', stderr: e.message }));
  const line = `${r.stdout}${r.stderr}`.trim();
  const v = kv(line);
  return { recv: Number(v.recv) || 0, uniq: Number(v.uniq) || 0, flows: Number(v.flows) || 0, line };
}

export interface PingResult { samples: number; lost: number; p50us?: number; p99us?: number; p999us?: number; out: string; ok: boolean }

/**
 * udpload ping from `role`: `warmup` unrecorded pings, then `count` samples. rate 0: one datagram
 * in flight; rate R: one every 1/R s whatever the replies, `timeoutMs` the wait for the last echoes.
 */
export async function ping(pair: BenchHost, role: PairRole, dst: string, count: number, warmup: number, timeoutMs: number,
  maxSeconds: number, rate = 0): Promise<PingResult> {
  const r = await pair.exec(role, [...pingPin, UDPLOAD, 'ping', '--dst', dst, '--count', String(count), '--warmup', String(warmup),
    '--timeout-ms', String(timeoutMs), '--max-seconds', String(maxSeconds), ...(rate > 0 ? ['--rate', String(rate)] : [])],
  { allowFail: true, timeoutMs: (maxSeconds + 10) * 1000 })
    .catch((e: Error) => ({ stdout: '', stderr: e.message, code: null }));
  const out = `${r.stdout}${r.stderr}`;
  const v = kv(out);
  const num = (s: string | undefined) => (s === undefined || s === '' ? undefined : Number(s));
  return { samples: Number(v.samples) || 0, lost: Number(v.lost) || 0, p50us: num(v.p50_us), p99us: num(v.p99_us), p999us: num(v.p999_us),
    out, ok: 'samples' in v };
}

/** udpload hold in the client ns: keeps `flows` app flows alive (one datagram per flow each interval). */
export function startHold(pair: BenchHost, dst: string, flows: number, sportBase: number, seconds: number, run: number): Proc {
  return pair.spawn('client', [UDPLOAD, 'hold', '--dst', dst, '--flows', String(flows), '--sport-base', String(sportBase),
    '--seconds', String(seconds), '--interval-ms', '1000', '--run', String(run)], { name: 'hold' });
}
