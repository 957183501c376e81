// Per-process figures from /proc, for the benchmark and tests: CPU time and memory of a PID.
import * as fs from 'fs';
import { execSyncQuiet } from './proc';

/** utime + stime of a process (all its threads), in clock ticks; undefined if it is gone. */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after "pid (comm) ": state is [0], utime [11], stime [12]
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = Number(f[11]) + Number(f[12]);
    return Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/** A memory line of /proc/PID/status (VmRSS, VmHWM, ...) in MiB, one decimal; undefined if it is gone. */
export function statusMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

/** Voluntary context switches of a process's main thread: how often its event loop went to sleep. */
export function mainThreadSleeps(pid: number): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** CPU time of every thread of a process so far, µs, from schedstat (precise, unlike stat's clock ticks). */
export function schedCpuUs(pid: number): number {
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  return ns / 1e3;
}

let hz: number | undefined;
/** Clock ticks per second (getconf CLK_TCK; 100 if unknown). */
export function clockTicks(): number {
  hz ??= Number(execSyncQuiet(['getconf', 'CLK_TCK']).trim()) || 100;
  return hz;
}
