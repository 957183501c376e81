// Inside each hop of the latency timeline: `perf record` of the scheduler's wake-ups and switches and
// of every system call of the tunnel's main threads, over a ping-pong. Each time a main thread is
// woken and sends before it sleeps again is one crossing of a datagram through that program, and its
// events split it into stages on one clock: the wait for a CPU after the wake-up (on an idle vCPU, its
// exit from halt), the return from epoll, the receive, the program's own work, the send (which runs the
// receiver's input path inline, and wakes it), and what the program does after the send before it
// sleeps (off this datagram's path, but in the way of anything woken onto the same CPU).
import * as fs from 'fs';
import { exec, sleep } from '../test/lib/proc';
import { pct } from './stats';

// x86-64 system call numbers.
const EPOLL = new Set([232, 281, 441]); // epoll_wait, epoll_pwait, epoll_pwait2
const RECV = new Set([0, 45, 47, 299]); // read, recvfrom, recvmsg, recvmmsg
const SEND = new Set([1, 44, 46, 307]); // write, sendto, sendmsg, sendmmsg

/** fd: the descriptor of the last read before the send. */
export interface Crossing { tid: number; fd: number; wake: number; run: number; epollRet: number; recvEnter: number; recvExit: number;
  sendEnter: number; sendExit: number; sleep: number }

interface Open { wake: number; run?: number; epollRet?: number; recvEnter?: number; recvExit?: number; fd?: number; sendEnter?: number; sendExit?: number }

/** Records the events of `tids` (main threads) while `load` runs. */
export async function recordCrossings<T>(file: string, tids: number[], secs: number, load: () => Promise<T>): Promise<T> {
  const any = (field: string) => tids.map((t) => `${field} == ${t}`).join(' || ');
  const rec = exec(['perf', 'record', '-q', '-a', '-o', file,
    '-e', 'sched:sched_wakeup', '--filter', any('pid'), '-e', 'sched:sched_switch', '--filter', any('next_pid'),
    '-e', 'raw_syscalls:sys_enter', '--filter', any('common_pid'), '-e', 'raw_syscalls:sys_exit', '--filter', any('common_pid'),
    '--', 'sleep', String(secs)], { allowFail: true, timeoutMs: (secs + 60) * 1000 });
  await sleep(500); // perf is recording
  const out = await load();
  await rec;
  return out;
}

/** The crossings in `perf script` output: a wake-up of a tracked thread, then at least one send before its next epoll wait. */
export function parseCrossings(script: string, tids: Set<number>): Crossing[] {
  const open = new Map<number, Open>();
  const out: Crossing[] = [];
  const re = /^\s*.+?\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s+(.*)$/;
  for (const line of script.split('\n')) {
    const m = re.exec(line);
    if (!m) continue;
    const t = Number(m[2]) * 1e6;
    const ev = m[3];
    const body = m[4];
    if (ev === 'sched:sched_wakeup') {
      const tid = Number(/\bpid=(\d+)/.exec(body)?.[1]);
      if (tids.has(tid)) open.set(tid, { wake: t }); // a wake that never sent (a timer) is replaced
      continue;
    }
    if (ev === 'sched:sched_switch') {
      const c = open.get(Number(/next_pid=(\d+)/.exec(body)?.[1]));
      if (c && c.run === undefined) c.run = t;
      continue;
    }
    const tid = Number(m[1]);
    const c = open.get(tid);
    if (!c || c.run === undefined) continue;
    const nr = Number(/^NR (-?\d+)/.exec(body)?.[1]);
    const enter = ev === 'raw_syscalls:sys_enter';
    if (EPOLL.has(nr)) {
      if (!enter && c.epollRet === undefined) c.epollRet = t;
      else if (enter && c.sendExit !== undefined) {
        out.push({ ...(c as Required<Open>), tid, sleep: t });
        open.delete(tid);
      }
    } else if (RECV.has(nr) && c.epollRet !== undefined && c.sendEnter === undefined) {
      if (enter) {
        c.recvEnter ??= t;
        // The last read before the send names the crossing: udp2raw reads /dev/urandom before its socket.
        c.fd = parseInt(/\(([0-9a-f]+)/.exec(body)?.[1] ?? 'ffff', 16);
      } else if (c.recvEnter !== undefined) c.recvExit = t;
    } else if (SEND.has(nr) && c.recvExit !== undefined) {
      if (enter && c.sendEnter === undefined) c.sendEnter = t;
      else if (!enter && c.sendEnter !== undefined && c.sendExit === undefined) c.sendExit = t;
    }
  }
  return out;
}

/** What kind of socket a process's descriptor is (packet, raw, udp, ...), from its network namespace's /proc tables. */
export function fdKinds(pid: number): Map<number, string> {
  const inodeKind = new Map<string, string>();
  for (const kind of ['packet', 'raw', 'udp', 'udp6', 'tcp', 'tcp6']) {
    let text = '';
    try { text = fs.readFileSync(`/proc/${pid}/net/${kind}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // /proc/net/packet has the inode in its last column; the others in the tenth.
      const inode = kind === 'packet' ? f[f.length - 1] : f[9];
      if (inode) inodeKind.set(inode, kind.replace('6', ''));
    }
  }
  const out = new Map<number, string>();
  let fds: string[] = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return out; }
  for (const fd of fds) {
    let link = '';
    try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    out.set(Number(fd), inode ? inodeKind.get(inode) ?? 'socket' : link.replace(/^anon_inode:/, ''));
  }
  return out;
}

export const STAGES = ['woken → on a CPU', 'on a CPU → epoll returns', 'epoll returns → recv', 'recv call(s)', 'own work: recv → send',
  'send call (receiver inline)', 'whole: woken → send returns', 'after the send → sleep (off path)'] as const;

/** Per stage of a group of crossings: p50, p90, p99 in µs. */
export function crossingStats(cs: Crossing[]): Array<{ stage: string; p50: number; p90: number; p99: number }> {
  const v = (f: (c: Crossing) => number) => cs.map(f).sort((a, b) => a - b);
  const cols = [v((c) => c.run - c.wake), v((c) => c.epollRet - c.run), v((c) => c.recvEnter - c.epollRet), v((c) => c.recvExit - c.recvEnter),
    v((c) => c.sendEnter - c.recvExit), v((c) => c.sendExit - c.sendEnter), v((c) => c.sendExit - c.wake), v((c) => c.sleep - c.sendExit)];
  return cols.map((s, i) => ({ stage: STAGES[i], p50: pct(s, 0.5), p90: pct(s, 0.9), p99: pct(s, 0.99) }));
}
