// Three-namespace topology for the integration tests:
//
//   client ns  --veth--  router ns  --veth--  server ns
//   10.201.1.2          .1 10.201.1.0/24
//                       .1 10.201.2.0/24      10.201.2.2
//
// The client has only a route to 10.201.2.0/24 (no default route). The router forwards with strict
// conntrack (nf_conntrack_tcp_be_liberal=0), drops INVALID and every UDP packet, counts forwarded TCP
// per direction, and masquerades towards the server, so the server sees 10.201.2.1.
//
// Names are unique per run. destroy() kills every process started here and every process left in
// the namespaces, then deletes them; it is bounded in time and also runs from process exit/SIGINT/SIGTERM.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exec, execSyncQuiet, ExecOptions, ExecResult, isAlive, Proc, signalPid, stopPid, pollUntil } from './proc';

export type Role = 'client' | 'router' | 'server';

/** Where marker files of live topologies are kept (tmpfs: gone after a reboot, like the namespaces). */
const MARKER_DIR = '/run/rsock-test';
/** Prefix of every namespace this harness creates. */
export const NS_PREFIX = 'rsk-';

export const ADDR = {
  client: '10.201.1.2',
  routerClient: '10.201.1.1',
  routerServer: '10.201.2.1',
  server: '10.201.2.2',
  clientNet: '10.201.1.0/24',
  serverNet: '10.201.2.0/24',
} as const;

/** nftables objects on the router, in one table so tests can read and extend them. */
export const NFT = {
  family: 'inet',
  table: 'rsk',
  /** prerouting, priority raw-ish (-300): sees every packet before conntrack/NAT, drops nothing. */
  pre: 'rsk_pre',
  /** forward filter: invalid drop, UDP drop, per-direction TCP counters. */
  fwd: 'rsk_fwd',
  counters: ['invalid_drops', 'udp_drops', 'tcp_c2s', 'tcp_s2c'] as const,
} as const;

export type CounterName = (typeof NFT.counters)[number];
export type Counters = Record<CounterName, { packets: number; bytes: number }>;

export interface SpawnInNsOptions { name: string; env?: NodeJS.ProcessEnv }

const live = new Set<Topology>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => { for (const t of live) t.destroySync(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const t of live) t.destroySync();
      process.exit(128 + (os.constants.signals[sig] ?? 1));
    });
  }
}

/** Deletes namespaces left by harness runs whose process is gone (e.g. killed with SIGKILL). */
export function sweepStale(): string[] {
  const removed: string[] = [];
  let files: string[] = [];
  try { files = fs.readdirSync(MARKER_DIR); } catch { return removed; }
  for (const f of files) {
    const p = path.join(MARKER_DIR, f);
    let m: { pid: number; namespaces: string[] };
    try { m = JSON.parse(fs.readFileSync(p, 'utf8')); } catch { continue; }
    if (isAlive(m.pid)) continue;
    for (const ns of m.namespaces) {
      killNsPidsSync(ns);
      execSyncQuiet(['ip', 'netns', 'del', ns]);
      removed.push(ns);
    }
    try { fs.unlinkSync(p); } catch { /* raced with another sweeper */ }
  }
  return removed;
}

function nsExists(ns: string): boolean {
  return fs.existsSync(`/run/netns/${ns}`);
}

function nsPidsSync(ns: string): number[] {
  if (!nsExists(ns)) return [];
  return execSyncQuiet(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 0 && p !== process.pid);
}

function killNsPidsSync(ns: string): void {
  for (const pid of nsPidsSync(ns)) signalPid(pid, 'SIGKILL');
}

export class Topology {
  readonly id: string;
  readonly ns: Record<Role, string>;
  /** Interface names: client's veth, router's two veths, server's veth. */
  readonly dev: { client: string; routerClient: string; routerServer: string; server: string };
  readonly logDir: string;
  readonly procs: Proc[] = [];
  /** PIDs of processes that are not our children (daemons) to stop at destroy(). */
  readonly extraPids = new Set<number>();
  private created = false;
  private destroyed = false;
  private guardsStarted = 0;
  private guardsPassed = 0;
  private failed = false;

  constructor() {
    this.id = crypto.randomBytes(3).toString('hex');
    this.ns = {
      client: `${NS_PREFIX}${this.id}-cli`,
      router: `${NS_PREFIX}${this.id}-rtr`,
      server: `${NS_PREFIX}${this.id}-srv`,
    };
    // Interface names must fit in 15 characters: "rk" + 6 hex + 2 = 10.
    this.dev = {
      client: `rk${this.id}c0`,
      routerClient: `rk${this.id}r1`,
      routerServer: `rk${this.id}r2`,
      server: `rk${this.id}s0`,
    };
    this.logDir = path.join(os.tmpdir(), `rsock-test-${this.id}`);
  }

  /** Creates a topology and brings it up. */
  static async create(): Promise<Topology> {
    const t = new Topology();
    await t.up();
    return t;
  }

  async up(): Promise<void> {
    if (process.getuid && process.getuid() !== 0) throw new Error('the integration harness needs root (network namespaces, nftables)');
    sweepStale();
    installExitHooks();
    live.add(this);
    fs.mkdirSync(MARKER_DIR, { recursive: true });
    fs.writeFileSync(path.join(MARKER_DIR, `${this.id}.json`), JSON.stringify({ pid: process.pid, namespaces: Object.values(this.ns) }));
    fs.mkdirSync(this.logDir, { recursive: true });
    this.created = true;
    const { client: C, router: R, server: S } = this.ns;
    const d = this.dev;
    const ip = (...a: string[]) => exec(['ip', ...a]);
    for (const ns of [C, R, S]) await ip('netns', 'add', ns);
    await ip('link', 'add', d.client, 'netns', C, 'type', 'veth', 'peer', 'name', d.routerClient, 'netns', R);
    await ip('link', 'add', d.server, 'netns', S, 'type', 'veth', 'peer', 'name', d.routerServer, 'netns', R);
    for (const ns of [C, R, S]) {
      await exec(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    await ip('-n', C, 'addr', 'add', `${ADDR.client}/24`, 'dev', d.client);
    await ip('-n', R, 'addr', 'add', `${ADDR.routerClient}/24`, 'dev', d.routerClient);
    await ip('-n', R, 'addr', 'add', `${ADDR.routerServer}/24`, 'dev', d.routerServer);
    await ip('-n', S, 'addr', 'add', `${ADDR.server}/24`, 'dev', d.server);
    await ip('-n', C, 'link', 'set', d.client, 'up');
    await ip('-n', R, 'link', 'set', d.routerClient, 'up');
    await ip('-n', R, 'link', 'set', d.routerServer, 'up');
    await ip('-n', S, 'link', 'set', d.server, 'up');
    // Client: only the server's subnet, deliberately no default route.
    await ip('-n', C, 'route', 'add', ADDR.serverNet, 'via', ADDR.routerClient);
    // Server: a way back to the client subnet (in practice it only talks to 10.201.2.1: masquerade).
    await ip('-n', S, 'route', 'add', ADDR.clientNet, 'via', ADDR.routerServer);
    // Router: nftables first (loads nf_conntrack in this namespace), then the sysctls.
    await this.nft('router', this.routerRuleset());
    await this.exec('router', ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.netfilter.nf_conntrack_tcp_be_liberal=0']);
  }

  private routerRuleset(): string {
    const d = this.dev;
    return `
table ${NFT.family} ${NFT.table} {
  counter invalid_drops {}
  counter udp_drops {}
  counter tcp_c2s {}
  counter tcp_s2c {}
  chain ${NFT.pre} {
    type filter hook prerouting priority -300; policy accept;
  }
  chain ${NFT.fwd} {
    type filter hook forward priority 0; policy accept;
    ct state invalid counter name "invalid_drops" drop
    meta l4proto udp counter name "udp_drops" drop
    iifname "${d.routerClient}" oifname "${d.routerServer}" meta l4proto tcp counter name "tcp_c2s"
    iifname "${d.routerServer}" oifname "${d.routerClient}" meta l4proto tcp counter name "tcp_s2c"
  }
}
table ip rsknat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${d.routerServer}" masquerade
  }
}
`;
  }

  // ---------------------------------------------------------------- running things in namespaces

  /** Runs `cmd` inside the namespace of `role` (or a namespace name) to completion, bounded in time. */
  exec(role: Role, cmd: string[], opts?: ExecOptions): Promise<ExecResult> {
    return exec(['ip', 'netns', 'exec', this.ns[role], ...cmd], opts);
  }

  /**
   * Starts `cmd` inside the namespace. `ip netns exec` execs the command in place, so the PID is
   * the command's own PID. The process is stopped by destroy() if still running.
   */
  spawn(role: Role, cmd: string[], opts: SpawnInNsOptions): Proc {
    if (this.destroyed) throw new Error('topology already destroyed');
    const p = new Proc(['ip', 'netns', 'exec', this.ns[role], ...cmd], { name: opts.name, logDir: this.logDir, env: opts.env });
    this.procs.push(p);
    return p;
  }

  /** Runs a compiled helper script from dist/test/lib (e.g. "udp-echo.js") in a namespace. */
  spawnHelper(role: Role, script: string, args: string[], name: string): Proc {
    return this.spawn(role, [process.execPath, path.join(__dirname, script), ...args], { name });
  }

  execHelper(role: Role, script: string, args: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.exec(role, [process.execPath, path.join(__dirname, script), ...args], opts);
  }

  /** PIDs of every process currently in the namespace. */
  async pids(role: Role): Promise<number[]> {
    const r = await exec(['ip', 'netns', 'pids', this.ns[role]], { allowFail: true });
    return r.stdout.split(/\s+/).filter(Boolean).map(Number);
  }

  /** Registers a PID that is not our child (a daemon) so destroy() stops it. */
  adopt(pid: number): void { this.extraPids.add(pid); }

  // ---------------------------------------------------------------- nftables

  /** Loads an nft script (nft -f -) in a namespace. */
  async nft(role: Role, script: string): Promise<void> {
    await this.exec(role, ['nft', '-f', '-'], { input: script });
  }

  /** Named counters of an nft table in a namespace: name -> {packets, bytes}. */
  async listCounters(role: Role, table: string, family = 'inet'): Promise<Record<string, { packets: number; bytes: number }>> {
    const r = await this.exec(role, ['nft', '-j', 'list', 'counters', 'table', family, table]);
    const res: Record<string, { packets: number; bytes: number }> = {};
    for (const item of JSON.parse(r.stdout).nftables as Array<Record<string, any>>) {
      const c = item.counter;
      if (c) res[c.name] = { packets: c.packets, bytes: c.bytes };
    }
    return res;
  }

  /** Named counters of the router's table. */
  async readNftCounters(): Promise<Counters> {
    const all = await this.listCounters('router', NFT.table, NFT.family);
    const res = {} as Counters;
    for (const n of NFT.counters) res[n] = all[n] ?? { packets: 0, bytes: 0 };
    return res;
  }

  /**
   * Adds a rule to a chain of the router's table (at the top by default) and returns its handle.
   * `rule` is nft syntax, e.g. `tcp dport 10001-10010 reject with tcp reset`.
   */
  async addRule(chain: string, rule: string, where: 'insert' | 'add' = 'insert'): Promise<number> {
    const r = await this.exec('router', ['nft', '--echo', '--handle', where, 'rule', NFT.family, NFT.table, chain, rule]);
    const m = /# handle (\d+)/.exec(r.stdout);
    if (!m) throw new Error(`nft did not report a handle for: ${rule}\n${r.stdout}`);
    return Number(m[1]);
  }

  async deleteRule(chain: string, handle: number): Promise<void> {
    await this.exec('router', ['nft', 'delete', 'rule', NFT.family, NFT.table, chain, 'handle', String(handle)]);
  }

  /** Packets counted by the (anonymous) counter of a rule, by handle. */
  async ruleCounter(chain: string, handle: number): Promise<{ packets: number; bytes: number }> {
    const r = await this.exec('router', ['nft', '-j', '-a', 'list', 'chain', NFT.family, NFT.table, chain]);
    for (const item of JSON.parse(r.stdout).nftables as Array<Record<string, any>>) {
      const rule = item.rule;
      if (!rule || rule.handle !== handle) continue;
      for (const e of rule.expr as Array<Record<string, any>>) {
        if (e.counter) return { packets: e.counter.packets, bytes: e.counter.bytes };
      }
      throw new Error(`rule ${handle} in ${chain} has no counter`);
    }
    throw new Error(`no rule with handle ${handle} in ${chain}`);
  }

  // ---------------------------------------------------------------- observation

  /** Tcp, Udp, Ip... counters of /proc/net/snmp inside the namespace, keyed like nstat ("TcpOutSegs"). */
  async nstat(role: Role): Promise<Record<string, number>> {
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

  /** UDP sockets in a namespace (ss -uanp), optionally only those owned by `pid`. */
  async udpSockets(role: Role, pid?: number): Promise<Array<{ local: string; peer: string; pids: number[] }>> {
    const r = await this.exec(role, ['ss', '-uanpH']);
    const res: Array<{ local: string; peer: string; pids: number[] }> = [];
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
  async tcpSockets(role: Role): Promise<Array<{ state: string; local: string; peer: string; segsOut: number; segsIn: number }>> {
    const r = await this.exec(role, ['ss', '-taniH']);
    const res: Array<{ state: string; local: string; peer: string; segsOut: number; segsIn: number }> = [];
    let cur: { state: string; local: string; peer: string; segsOut: number; segsIn: number } | undefined;
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
    live.delete(this);
    const keepLogs = this.failed || this.guardsPassed < this.guardsStarted || process.env.RSOCK_KEEP_LOGS === '1';
    if (keepLogs && !this.failed && this.guardsPassed < this.guardsStarted) this.dumpLogs();
    await Promise.all(this.procs.map((p) => p.stop(2000)));
    await Promise.all([...this.extraPids].map((pid) => stopPid(pid, 2000)));
    if (this.created) {
      for (const role of ['client', 'router', 'server'] as Role[]) {
        const left = (await this.pids(role).catch(() => [])).filter((p) => p !== process.pid);
        for (const pid of left) signalPid(pid, 'SIGKILL');
        if (left.length) await pollUntil(() => left.every((p) => !isAlive(p)), 2000, 50);
      }
      for (const ns of Object.values(this.ns)) {
        if (nsExists(ns)) await exec(['ip', 'netns', 'del', ns], { allowFail: true, timeoutMs: 5000 }).catch(() => undefined);
      }
      try { fs.unlinkSync(path.join(MARKER_DIR, `${this.id}.json`)); } catch { /* already gone */ }
    }
    if (keepLogs) console.error(`rsock test logs kept in ${this.logDir}`);
    else fs.rmSync(this.logDir, { recursive: true, force: true });
  }

  /** Last-resort synchronous teardown for process exit and signals. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const p of this.procs) p.killNow();
    for (const pid of this.extraPids) signalPid(pid, 'SIGKILL');
    if (!this.created) return;
    for (const ns of Object.values(this.ns)) killNsPidsSync(ns);
    for (const ns of Object.values(this.ns)) if (nsExists(ns)) execSyncQuiet(['ip', 'netns', 'del', ns]);
    try { fs.unlinkSync(path.join(MARKER_DIR, `${this.id}.json`)); } catch { /* already gone */ }
    try { process.stderr.write(`rsock test logs kept in ${this.logDir}\n`); } catch { /* stderr closed */ }
  }

  /** True if none of this topology's namespaces exists any more. */
  gone(): boolean {
    return Object.values(this.ns).every((ns) => !nsExists(ns));
  }
}
