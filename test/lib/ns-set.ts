// A set of network namespaces owned by this process, the base of every topology of the harness
// (tests, demo, benchmark): unique names with the project prefix, processes started inside them and
// tracked by PID, observation helpers, and a teardown that is bounded in time and also runs from
// process exit and SIGINT/SIGTERM/SIGHUP (see ns-cleanup.ts).
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exec, execSyncQuiet, ExecOptions, ExecResult, isAlive, Proc, signalPid, stopPid, pollUntil } from './proc';
import { killNsPidsSync, NS_PREFIX, nsExists, registerLive, removeMarker, sweepStale, unregisterLive, writeMarker } from './ns-cleanup';

export interface SpawnInNsOptions { name: string; env?: NodeJS.ProcessEnv }

/**
 * What happens to the log directory at teardown. auto: kept when a guarded test failed or never
 * finished, or RSOCK_KEEP_LOGS=1 (and on an abnormal exit); keep: always kept; discard: always removed.
 */
export type LogPolicy = 'auto' | 'keep' | 'discard';

export interface UdpSocketInfo { local: string; peer: string; pids: number[] }
export interface TcpSocketInfo { state: string; local: string; peer: string; segsOut: number; segsIn: number }

export class NsSet<R extends string> {
  readonly id: string;
  /** Namespace name per role: `${NS_PREFIX}${id}-${suffix}`. */
  readonly ns: Record<R, string>;
  readonly logDir: string;
  readonly procs: Proc[] = [];
  /** PIDs of processes that are not our children (daemons) to stop at destroy(). */
  readonly extraPids = new Set<number>();
  logPolicy: LogPolicy = 'auto';
  private created = false;
  private destroyed = false;
  private guardsStarted = 0;
  private guardsPassed = 0;
  private failed = false;

  /** suffixes: role -> short suffix of its namespace name. logPrefix: prefix of the log directory in the temp dir. */
  constructor(suffixes: Record<R, string>, logPrefix = 'rsock-test') {
    this.id = crypto.randomBytes(3).toString('hex');
    const ns = {} as Record<R, string>;
    for (const r of Object.keys(suffixes) as R[]) ns[r] = `${NS_PREFIX}${this.id}-${suffixes[r]}`;
    this.ns = ns;
    this.logDir = path.join(os.tmpdir(), `${logPrefix}-${this.id}`);
  }

  get roles(): R[] { return Object.keys(this.ns) as R[]; }

  /** Root check, stale sweep, marker and exit hooks, then `ip netns add` for every role. */
  protected async addNamespaces(): Promise<void> {
    if (process.getuid && process.getuid() !== 0) throw new Error('the namespace harness needs root (network namespaces, raw sockets, nftables)');
    if (this.destroyed) throw new Error('namespace set already destroyed');
    sweepStale();
    registerLive(this);
    writeMarker(this.id, Object.values(this.ns));
    fs.mkdirSync(this.logDir, { recursive: true });
    this.created = true;
    for (const r of this.roles) await exec(['ip', 'netns', 'add', this.ns[r]]);
  }

  /** IPv6 off (no router solicitations or ND in the figures) and loopback up, in every namespace. */
  protected async initNamespaces(): Promise<void> {
    for (const r of this.roles) {
      await this.exec(r, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      await exec(['ip', '-n', this.ns[r], 'link', 'set', 'lo', 'up']);
    }
  }

  // ---------------------------------------------------------------- running things in namespaces

  /** Runs `cmd` inside the namespace of `role` to completion, bounded in time. */
  exec(role: R, cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    return exec(['ip', 'netns', 'exec', this.ns[role], ...cmd], opts);
  }

  /**
   * Starts `cmd` inside the namespace. `ip netns exec` execs the command in place, so the PID is
   * the command's own PID. The process is stopped by destroy() if still running.
   */
  spawn(role: R, cmd: string[], opts: SpawnInNsOptions): Proc {
    if (this.destroyed) throw new Error('namespace set already destroyed');
    const p = new Proc(['ip', 'netns', 'exec', this.ns[role], ...cmd], { name: opts.name, logDir: this.logDir, env: opts.env });
    this.procs.push(p);
    return p;
  }

  /** Runs a compiled helper script from dist/test/lib (e.g. "udp-echo.js") in a namespace. */
  spawnHelper(role: R, script: string, args: string[], name: string): Proc {
    return this.spawn(role, [process.execPath, path.join(__dirname, script), ...args], { name });
  }

  execHelper(role: R, script: string, args: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.exec(role, [process.execPath, path.join(__dirname, script), ...args], opts);
  }

  /** PIDs of every process currently in the namespace. */
  async pids(role: R): Promise<number[]> {
    const r = await exec(['ip', 'netns', 'pids', this.ns[role]], { allowFail: true });
    return r.stdout.split(/\s+/).filter(Boolean).map(Number);
  }

  /** Registers a PID that is not our child (a daemon) so destroy() stops it. */
  adopt(pid: number): void { this.extraPids.add(pid); }

  // ---------------------------------------------------------------- observation

  /** Tcp, Udp, Ip... counters of /proc/net/snmp inside the namespace, keyed like nstat ("TcpOutSegs"). */
  async nstat(role: R): Promise<Record<string, number>> {
    const r = await this.exec(role, ['cat', '/proc/net/snmp']);
    const lines = r.stdout.trim().split('\n');
    const res: Record<string, number> = {};
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const [k1, ...names] = lines[i].split(/\s+/);
      const [k2, ...vals] = lines[i + 1].split(/\s+/);
      if (k1 !== k2) continue;
      const proto = k1.replace(/:$/, '');
      names.forEach((n, j) => { res[proto + n] = Number(vals[j]); });
    }
    return res;
  }

  /** Interface statistics (/sys/class/net/DEV/statistics/NAME) inside the namespace; 0 when unreadable. */
  async devStats<K extends string>(role: R, dev: string, names: readonly K[]): Promise<Record<K, number>> {
    const files = names.map((n) => `/sys/class/net/${dev}/statistics/${n}`);
    const r = await this.exec(role, ['cat', ...files], { allowFail: true, timeoutMs: 5000 });
    const vals = r.stdout.trim().split('\n');
    const res = {} as Record<K, number>;
    names.forEach((n, i) => { res[n] = Number(vals[i]) || 0; });
    return res;
  }

  /** UDP sockets in a namespace (ss -uanp), optionally only those owned by `pid`. */
  async udpSockets(role: R, pid?: number): Promise<UdpSocketInfo[]> {
    const r = await this.exec(role, ['ss', '-uanpH']);
    const res: UdpSocketInfo[] = [];
    for (const line of r.stdout.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
      if (pid !== undefined && !pids.includes(pid)) continue;
      res.push({ local: f[3], peer: f[4], pids });
    }
    return res;
  }

  /** TCP sockets in a namespace with their kernel segment counters (ss -tani). */
  async tcpSockets(role: R): Promise<TcpSocketInfo[]> {
    const r = await this.exec(role, ['ss', '-taniH']);
    const res: TcpSocketInfo[] = [];
    let cur: TcpSocketInfo | undefined;
    for (const line of r.stdout.split('\n')) {
      if (!line.trim()) continue;
      if (!/^\s/.test(line)) {
        const f = line.trim().split(/\s+/);
        cur = { state: f[0], local: f[3], peer: f[4], segsOut: 0, segsIn: 0 };
        res.push(cur);
      } else if (cur) {
        const o = /segs_out:(\d+)/.exec(line);
        const i = /segs_in:(\d+)/.exec(line);
        if (o) cur.segsOut = Number(o[1]);
        if (i) cur.segsIn = Number(i[1]);
      }
    }
    return res;
  }

  /** True if a TCP socket listens on `port` in the namespace. */
  async tcpListening(role: R, port: number): Promise<boolean> {
    const r = await this.exec(role, ['ss', '-ltnH', `sport = :${port}`], { allowFail: true, timeoutMs: 5000 });
    return /LISTEN/.test(r.stdout);
  }

  // ---------------------------------------------------------------- diagnostics and teardown

  /**
   * Wraps a test body: on failure it prints the tail of every process log. Tests that never
   * finish (node:test timeout) are noticed at destroy(), which then prints the logs too.
   */
  guard<A extends unknown[]>(fn: (...a: A) => Promise<void>): (...a: A) => Promise<void> {
    return async (...a: A) => {
      this.guardsStarted++;
      try {
        await fn(...a);
        this.guardsPassed++;
      } catch (e) {
        this.failed = true;
        this.dumpLogs();
        throw e;
      }
    };
  }

  dumpLogs(lines = 40): void {
    for (const p of this.procs) {
      console.error(`--- ${p.name} (pid ${p.pid}, exit ${p.exitCode ?? p.exitSignal ?? 'running'}) ${p.logPath} ---\n${p.tail(lines)}`);
    }
  }

  /**
   * Stops every process (ours, adopted daemons, and anything else left in the namespaces) and
   * deletes the namespaces. Bounded: about 10 s at worst. Safe to call more than once.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    unregisterLive(this);
    const unfinished = this.guardsPassed < this.guardsStarted;
    const keepLogs = this.logPolicy === 'keep' ||
      (this.logPolicy === 'auto' && (this.failed || unfinished || process.env.RSOCK_KEEP_LOGS === '1'));
    if (this.logPolicy === 'auto' && !this.failed && unfinished) this.dumpLogs();
    await Promise.all(this.procs.map((p) => p.stop(2000)));
    await Promise.all([...this.extraPids].map((pid) => stopPid(pid, 2000)));
    if (this.created) {
      for (const role of this.roles) {
        const left = (await this.pids(role).catch(() => [])).filter((p) => p !== process.pid);
        for (const pid of left) signalPid(pid, 'SIGKILL');
        if (left.length) await pollUntil(() => left.every((p) => !isAlive(p)), 2000, 50);
      }
      for (const ns of Object.values<string>(this.ns)) {
        if (nsExists(ns)) await exec(['ip', 'netns', 'del', ns], { allowFail: true, timeoutMs: 5000 }).catch(() => undefined);
      }
      removeMarker(this.id);
    }
    if (keepLogs) console.error(`rsock test logs kept in ${this.logDir}`);
    else fs.rmSync(this.logDir, { recursive: true, force: true });
  }

  /** Last-resort synchronous teardown for process exit and signals. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    unregisterLive(this);
    for (const p of this.procs) p.killNow();
    for (const pid of this.extraPids) signalPid(pid, 'SIGKILL');
    if (!this.created) return;
    for (const ns of Object.values<string>(this.ns)) killNsPidsSync(ns);
    for (const ns of Object.values<string>(this.ns)) if (nsExists(ns)) execSyncQuiet(['ip', 'netns', 'del', ns]);
    removeMarker(this.id);
    if (this.logPolicy === 'discard') {
      try { fs.rmSync(this.logDir, { recursive: true, force: true }); } catch { /* best effort */ }
      return;
    }
    try { process.stderr.write(`rsock test logs kept in ${this.logDir}\n`); } catch { /* stderr closed */ }
  }

  /** True if none of this set's namespaces exists any more. */
  gone(): boolean {
    return Object.values<string>(this.ns).every((ns) => !nsExists(ns));
  }
}
