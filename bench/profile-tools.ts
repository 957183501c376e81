// Readers for what bench/profile.ts collects: `perf stat` syscall and context-switch counts,
// `perf record` reports, V8 .cpuprofile files (--cpu-prof) and --trace-gc lines.
import * as fs from 'fs';
import * as path from 'path';
import { exec } from '../test/lib/proc';

/** Syscalls worth naming one by one; the rest are in raw_syscalls:sys_enter's total. */
const SYSCALLS = ['epoll_wait', 'epoll_pwait', 'recvmmsg', 'sendmmsg', 'recvfrom', 'recvmsg', 'sendto', 'sendmsg', 'read',
  'write', 'poll', 'ppoll', 'futex', 'mmap', 'munmap', 'mprotect', 'madvise', 'getsockopt', 'setsockopt', 'ioctl', 'getpid'];

/** The perf events counted per process: every syscall, the named ones, context switches, CPU time. */
export function statEvents(): string[] {
  const dir = ['/sys/kernel/tracing/events/syscalls', '/sys/kernel/debug/tracing/events/syscalls'].find((d) => fs.existsSync(d));
  const named = dir ? SYSCALLS.filter((s) => fs.existsSync(path.join(dir, `sys_enter_${s}`))).map((s) => `syscalls:sys_enter_${s}`) : [];
  return ['task-clock', 'context-switches', 'raw_syscalls:sys_enter', ...named];
}

/** `perf stat` on one process (all its threads) for `secs`: event name -> count. */
export async function perfStat(pid: number, secs: number, events: string[]): Promise<Record<string, number>> {
  const r = await exec(['perf', 'stat', '-x', ',', '-e', events.join(','), '-p', String(pid), '--', 'sleep', String(secs)],
    { allowFail: true, timeoutMs: (secs + 10) * 1000 });
  const out: Record<string, number> = {};
  for (const line of r.stderr.split('\n')) {
    const f = line.split(',');
    if (f.length < 3 || !/^[\d.]+$/.test(f[0])) continue;
    out[f[2].replace(/^syscalls:sys_enter_/, '').replace(/^raw_syscalls:sys_enter$/, 'syscalls')] = Number(f[0]);
  }
  return out;
}

/** The total event count (ns of CPU sampled, every process) of a `perf record -e cpu-clock` file. */
export async function perfTotal(file: string): Promise<number> {
  const r = await exec(['perf', 'report', '-i', file, '--stdio', '--sort', 'pid', '-g', 'none'], { allowFail: true, timeoutMs: 120_000 });
  return Number(/Event count \(approx\.\): (\d+)/.exec(r.stdout)?.[1] ?? 0);
}

/**
 * `perf report` of a system-wide `perf record -e cpu-clock`, for one process, as lines of "µs per
 * datagram, % of all samples, what": the sample period is ns of CPU, so a share of the event count
 * divided by the datagrams is CPU time per datagram. Softirq work shows under the process it
 * interrupted or ran in (a veth or loopback send processes the receiving side's stack right there).
 */
export async function perfReport(file: string, pid: number, sort: string, total: number, delivered: number, limit: number): Promise<string[]> {
  // Filtered here, not with perf's --pid, whose absolute percentages came out wrong on this perf.
  const r = await exec(['perf', 'report', '-i', file, '--stdio', '--no-children', '-g', 'none', '--sort', `pid,${sort}`,
    '--percent-limit', String(limit)], { allowFail: true, timeoutMs: 120_000 });
  const lines: string[] = [];
  for (const l of r.stdout.split('\n')) {
    const m = /^\s+([\d.]+)%\s+(\d+):\S+\s+(.*)$/.exec(l);
    if (!m || Number(m[2]) !== pid) continue;
    const pct = Number(m[1]);
    lines.push(`${((pct / 100) * total / 1e3 / delivered).toFixed(2).padStart(7)} us ${m[1].padStart(6)} %  ${m[3].replace(/\s+/g, ' ').trim()}`);
  }
  return lines;
}

/** Kernel functions whose inclusive time marks a stage of the data path (see BENCHMARKS.md, "Where the time goes"). */
export const STAGES: Array<[string, string]> = [
  ['__sys_sendmmsg', 'sendmmsg, all (inject and UDP send)'],
  ['raw_sendmsg', '  inject: raw IP send (route, netfilter, veth)'],
  ['udp_sendmsg', '  UDP send to the local app or target (loopback)'],
  ['handle_softirqs', '  of which receive softirq run in this context (the peer or local receiver)'],
  ['tpacket_rcv', '  of which packet-socket copies (captures)'],
  ['__x64_sys_recvmmsg', 'recvmmsg (UDP from the local app or target)'],
  ['do_epoll_wait', 'epoll waits (libuv and the mux)'],
  ['__schedule', 'scheduler (sleep and wake-up)'],
  ['asm_sysvec_apic_timer_interrupt', 'timer interrupts'],
];

/** Inclusive CPU per datagram of the STAGES functions in one process, from `perf record -g`. */
export async function perfStages(file: string, pid: number, total: number, delivered: number): Promise<string[]> {
  const r = await exec(['perf', 'report', '-i', file, '--stdio', '--children', '-g', 'none', '--sort', 'pid,sym', '--percent-limit', '0.01'],
    { allowFail: true, timeoutMs: 120_000 });
  const found = new Map<string, number>();
  for (const l of r.stdout.split('\n')) {
    const m = /^\s+([\d.]+)%\s+[\d.]+%\s+(\d+):\S+\s+\[[k.]\] (\S+)/.exec(l);
    if (m && Number(m[2]) === pid && !found.has(m[3])) found.set(m[3], Number(m[1]));
  }
  return STAGES.map(([sym, what]) => {
    const pct = found.get(sym) ?? 0;
    return `${((pct / 100) * total / 1e3 / delivered).toFixed(2).padStart(7)} us ${pct.toFixed(2).padStart(6)} %  ${what} [${sym}]`;
  });
}

interface ProfNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface JsProfile {
  /** Sampled µs inside [from, to]. */
  sampledUs: number;
  /** [self µs, name] and [total µs, name], highest first. */
  self: Array<[number, string]>;
  total: Array<[number, string]>;
}

/**
 * Self and inclusive time per function from a V8 .cpuprofile, counting only samples taken between
 * `from` and `to` (µs of the monotonic clock, which V8's profile timestamps also use).
 */
export function readCpuProfile(file: string, from: number, to: number): JsProfile {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (n: ProfNode) => {
    const f = n.callFrame;
    const where = f.url ? ` ${path.basename(f.url)}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'}${where}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let t = p.startTime;
  let sampled = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    const dt = p.timeDeltas[i + 1] ?? 0;
    if (t < from || t > to || dt <= 0) continue;
    sampled += dt;
    const leaf = byId.get(p.samples[i]);
    if (!leaf) continue;
    self.set(name(leaf), (self.get(name(leaf)) ?? 0) + dt);
    // Each function once per sample, however deep it recurses.
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = name(byId.get(id)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + dt);
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].map(([k, v]) => [v, k] as [number, string]).sort((a, b) => b[0] - a[0]);
  return { sampledUs: sampled, self: sorted(self), total: sorted(total) };
}

export interface GcSummary { scavenges: number; markCompacts: number; pauseMs: number; maxPauseMs: number; freedMb: number }

/** --trace-gc lines of a process's output: collections, pauses, and the young garbage they freed. */
export function readTraceGc(text: string): GcSummary {
  const s: GcSummary = { scavenges: 0, markCompacts: 0, pauseMs: 0, maxPauseMs: 0, freedMb: 0 };
  for (const line of text.split('\n')) {
    const m = /(Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)[^,]*?([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ ([\d.]+) ms/.exec(line);
    if (!m) continue;
    if (m[1] === 'Scavenge' || m[1] === 'Minor Mark-Sweep') s.scavenges++;
    else s.markCompacts++;
    const pause = Number(m[6]);
    s.pauseMs += pause;
    s.maxPauseMs = Math.max(s.maxPauseMs, pause);
    s.freedMb += Math.max(0, Number(m[2]) - Number(m[4]));
  }
  return s;
}
