// Traffic helpers over a Topology: UDP echo target, UDP probes, TCP source/sink, kcptun.
import { Role, Topology } from './netns';
import { Proc } from './proc';
import { CLIENT_LUDP, SERVER_TARGET } from './rsock';

export interface EchoResult {
  sent: number; received: number; bad: number; dup: number; sendErrors: number; ratio: number;
  rttMs: { p50: number; p99: number; max: number }; elapsedMs: number;
  /** Longest time while sending in which no echo arrived. */
  maxGapMs: number;
}
export interface UntilEchoResult { ok: boolean; ms: number; at: number; sent: number }
export interface PipeResult { op: string; bytes: number; sha256: string; ms: number; remote?: string; complete?: boolean; error?: string }

function lastJson<T>(stdout: string, what: string): T {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`${what}: no JSON result in output:\n${stdout}`);
  return JSON.parse(line) as T;
}

/** Starts the UDP echo target (default: the server's --taddr, in the server ns). */
export async function startUdpEcho(topo: Topology, bind = SERVER_TARGET, role: Role = 'server', name = 'udp-echo'): Promise<Proc> {
  const p = topo.spawnHelper(role, 'udp-echo.js', ['--bind', bind], name);
  await p.waitFor(/"ready"/, 5000);
  return p;
}

export interface EchoOptions {
  to?: string; count?: number; min?: number; max?: number; rate?: number; waitMs?: number; role?: Role;
  /** Random bytes of random sizes instead of the checked pattern (no structure of ours on the wire). */
  random?: boolean;
}

function echoArgs(o: EchoOptions): { args: string[]; boundMs: number } {
  const count = o.count ?? 200;
  const rate = o.rate ?? 500;
  const waitMs = o.waitMs ?? 3000;
  const args = ['echo', '--to', o.to ?? CLIENT_LUDP, '--count', String(count), '--min', String(o.min ?? 16),
    '--max', String(o.max ?? 1200), '--rate', String(rate), '--wait', String(waitMs), ...(o.random ? ['--random', '1'] : [])];
  return { args, boundMs: (count / rate) * 1000 + waitMs + 10_000 };
}

/** Sends datagrams of mixed sizes and checks their echoes (default: into the client's --ludp). */
export async function udpEcho(topo: Topology, o: EchoOptions = {}): Promise<EchoResult> {
  const { args, boundMs } = echoArgs(o);
  const r = await topo.execHelper(o.role ?? 'client', 'udp-probe.js', args, { timeoutMs: boundMs });
  return lastJson<EchoResult>(r.stdout, 'udp-probe echo');
}

/** An echo run in the background (while the test disturbs the tunnel); read it with echoFlowResult. */
export interface EchoFlow { proc: Proc; boundMs: number }

export function startEchoFlow(topo: Topology, o: EchoOptions = {}, name = 'echo-flow'): EchoFlow {
  const { args, boundMs } = echoArgs(o);
  return { proc: topo.spawnHelper(o.role ?? 'client', 'udp-probe.js', args, name), boundMs };
}

/** Waits (bounded by the run's own length) for a background echo run and returns its result. */
export async function echoFlowResult(f: EchoFlow): Promise<EchoResult> {
  if (!(await f.proc.waitExit(f.boundMs))) {
    await f.proc.stop();
    throw new Error(`${f.proc.name} did not finish within ${f.boundMs} ms`);
  }
  return lastJson<EchoResult>(f.proc.stdout(), f.proc.name);
}

export interface EchoTargetStats { echoed: number; sunk: number; dupes: number; distinct: number }

/** The echo target's counters (SIGUSR2 to its PID), including datagrams it received twice. */
export async function echoTargetStats(echo: Proc): Promise<EchoTargetStats> {
  const mark = echo.mark();
  echo.signal('SIGUSR2');
  const line = await echo.waitFor(/"stats"/, 5000, mark);
  return (JSON.parse(line) as { stats: EchoTargetStats }).stats;
}

/** Probes every intervalMs until an echo comes back; resolves with the time of the first echo. */
export async function untilEcho(topo: Topology, timeoutMs: number, intervalMs = 50, to = CLIENT_LUDP): Promise<UntilEchoResult> {
  const r = await topo.execHelper('client', 'udp-probe.js', ['until-echo', '--to', to, '--interval', String(intervalMs), '--timeout', String(timeoutMs)],
    { timeoutMs: timeoutMs + 10_000 });
  return lastJson<UntilEchoResult>(r.stdout, 'udp-probe until-echo');
}

/** Starts a one-direction sender (datagrams the echo target does not answer). */
export function startOneWay(topo: Topology, count: number, intervalMs: number, name = 'udp-oneway', to = CLIENT_LUDP): Proc {
  return topo.spawnHelper('client', 'udp-probe.js', ['send', '--to', to, '--count', String(count), '--interval', String(intervalMs)], name);
}

/** TCP source/sink server (tcp-pipe serve). */
export async function startTcpServe(topo: Topology, role: Role, listen: string, name = 'tcp-serve'): Promise<Proc> {
  const p = topo.spawnHelper(role, 'tcp-pipe.js', ['serve', '--listen', listen], name);
  await p.waitFor(/"ready"/, 5000);
  return p;
}

/** Runs tcp-pipe send|recv to completion and returns its result. */
export async function tcpTransfer(topo: Topology, role: Role, mode: 'send' | 'recv', connect: string, bytes: number, timeoutMs: number): Promise<PipeResult> {
  const r = await topo.execHelper(role, 'tcp-pipe.js', [mode, '--connect', connect, '--bytes', String(bytes), '--timeout', String(timeoutMs)],
    { timeoutMs: timeoutMs + 5000, allowFail: true });
  const res = lastJson<PipeResult>(r.stdout, `tcp-pipe ${mode}`);
  if (res.error || r.code !== 0) throw new Error(`tcp-pipe ${mode} failed (exit ${r.code}): ${res.error ?? ''}\n${r.stderr}`);
  return res;
}

/** Waits for the n-th result line (op) of a tcp-pipe serve process. */
export async function serveResult(p: Proc, op: 'sink' | 'source', nth: number, timeoutMs: number): Promise<PipeResult> {
  const deadline = Date.now() + timeoutMs;
  const re = /"op":"(sink|source|error)"/;
  for (let i = 0; i < 1000; i++) {
    const mark = p.mark();
    const hits = p.jsonLines<PipeResult>().filter((r) => r.op === op || r.op === 'error');
    if (hits.length >= nth) return hits[nth - 1];
    if (Date.now() >= deadline || !p.running) break;
    await p.waitFor(re, Math.max(1, deadline - Date.now()), mark).catch(() => undefined);
  }
  throw new Error(`tcp-pipe serve: no ${op} result #${nth} within ${timeoutMs} ms\n${p.tail()}`);
}

/** kcptun settings for the tests: no crypto, no compression, no FEC, datagrams ≤ 1200 bytes. */
export const KCPTUN_COMMON = ['--crypt', 'none', '--nocomp', '--mode', 'fast3', '--mtu', '1200', '--datashard', '0', '--parityshard', '0',
  '--sndwnd', '1024', '--rcvwnd', '1024', '--quiet'];

/** kcptun-server in the server ns on the rsock target (default SERVER_TARGET), forwarding to `target` (TCP). */
export function startKcptunServer(topo: Topology, key: string, target: string, listen = SERVER_TARGET): Proc {
  return topo.spawn('server', ['kcptun-server', '--listen', listen, '--target', target, '--key', key, ...KCPTUN_COMMON], { name: 'kcptun-server' });
}

/** kcptun-client in the client ns listening on `listen` (TCP), sending to rsock-client's --ludp (default CLIENT_LUDP). */
export function startKcptunClient(topo: Topology, key: string, listen: string, ludp = CLIENT_LUDP): Proc {
  return topo.spawn('client', ['kcptun-client', '--localaddr', listen, '--remoteaddr', ludp, '--key', key, '--conn', '1', ...KCPTUN_COMMON],
    { name: 'kcptun-client' });
}
