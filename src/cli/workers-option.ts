// --workers=N|auto: how many worker threads carry the tunnel (docs/PROTOCOL.md §4, "Workers"). The
// server splits its --ports into classes, one worker each; the client's workers each bind --ludp with
// SO_REUSEPORT and dial every port with their share of --conns. This file holds the flag's rules.
import * as fs from 'fs';
import * as os from 'os';
import { MAX_WORKERS } from '../core/partition';
import type { TransportType } from '../core/udp-link';

export type WorkersSetting = number | 'auto';

/** What --workers is when it is not given: 'auto', see autoWorkers(). */
export const DEFAULT_WORKERS: WorkersSetting = 'auto';

/**
 * --workers=auto: one worker per core but one, at least one. The kernel's own part of every datagram
 * (raw-socket output, capture, the UDP hops it carries inline) is larger than rsock's, and the apps
 * rsock serves need a core too; on 2 cores a second worker cost 21 % more CPU per datagram and 22 MiB
 * more memory per end for 1.2x the peak rate (BENCHMARKS.md, "Worker threads").
 */
export function autoWorkers(cores: number): number {
  return Math.max(1, Math.floor(cores) - 1);
}

/** The flag's value; a bad one throws the error `fail` makes of a message naming the flag. */
export function parseWorkers(raw: string | null, fail: (msg: string) => Error): WorkersSetting {
  if (raw === null) return DEFAULT_WORKERS;
  const s = raw.trim();
  if (s === 'auto') return 'auto';
  const n = Number(s);
  if (s === '' || !Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw fail(`--workers: "${raw}" must be a whole number from 1 to ${MAX_WORKERS}, or auto`);
  return n;
}

export function workersHelp(isClient: boolean): string {
  const what = isClient
    ? 'each with its own --ludp socket (SO_REUSEPORT), capture, injection and share of --conns (at most --conns of them)'
    : 'each serving its own share of --ports (at most one per port) with its own capture and injection';
  return `worker threads, ${what}; "auto": one per core but one, at least one; --type=udp|all runs one (default: ${DEFAULT_WORKERS})`;
}

export interface WorkersContext {
  kind: 'client' | 'server';
  ports: number[];
  /** Client: connections per port (--conns). */
  conns: number;
  transport: TransportType;
  /** Whether --workers was given (a flag or -f), so that capping it is worth a log line. */
  explicit: boolean;
}

/**
 * The number of workers to run, and why it is fewer than asked (null when it is not). A server
 * worker needs one port of its own; a client worker needs a connection on every port, so one of
 * --conns; the UDP transport's paths are not pinned to classes, so --type=udp|all runs one worker.
 */
export function effectiveWorkers(setting: WorkersSetting, c: WorkersContext, cores = os.availableParallelism()): { count: number; why: string | null } {
  const asked = setting === 'auto' ? autoWorkers(cores) : setting;
  if (asked <= 1) return { count: 1, why: null };
  const say = (count: number, why: string) => ({ count, why: c.explicit && setting !== 'auto' ? `--workers=${asked}: running ${count}, ${why}` : null });
  if (c.transport !== 'tcp') return say(1, `because the UDP transport (--type=${c.transport}) is single-threaded`);
  if (c.kind === 'server' && asked > c.ports.length) return say(c.ports.length, `one per listening port (--ports has ${c.ports.length})`);
  if (c.kind === 'client' && asked > c.conns) return say(c.conns, `since each client worker dials every port with its share of --conns=${c.conns} (give --conns=${asked})`);
  return { count: asked, why: null };
}

/** Connections per port that client worker `w` of `n` dials: --conns split as evenly as it goes. */
export function connsOfWorker(conns: number, w: number, n: number): number {
  return Math.floor(conns / n) + (w < conns % n ? 1 : 0);
}

/**
 * The local ports each of `n` client workers dials from: the kernel's ephemeral range (this network
 * namespace's net.ipv4.ip_local_port_range, which IPv6 uses too) cut into `n` equal parts, so that
 * each worker's capture can name its own ports and never sees another worker's segments.
 */
export function localPortRanges(n: number, rangeText = readPortRange()): [number, number][] {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(rangeText);
  let [lo, hi] = m ? [Number(m[1]), Number(m[2])] : [32768, 60999];
  if (!(lo >= 1024 && hi <= 65535 && hi - lo + 1 >= 64 * n)) [lo, hi] = [32768, 60999];
  const span = Math.floor((hi - lo + 1) / n);
  return Array.from({ length: n }, (_, k) => [lo + k * span, lo + (k + 1) * span - 1] as [number, number]);
}

function readPortRange(): string {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  } catch {
    return '';
  }
}
