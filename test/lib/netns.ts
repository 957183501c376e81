// Three-namespace topology for the integration tests and the demo:
//
//   client ns  --veth--  router ns  --veth--  server ns
//   10.201.1.2          .1 10.201.1.0/24
//                       .1 10.201.2.0/24      10.201.2.2
//
// With { ipv6: true } every link also carries IPv6 (ADDR6, a ULA prefix), routed and NATed alike, and
// serverAddr is the server's IPv6 address.
//
// The client has only a route to 10.201.2.0/24 (no default route). The router forwards with strict
// conntrack (nf_conntrack_tcp_be_liberal=0), drops INVALID and every UDP packet, counts forwarded TCP
// per direction, and masquerades towards the server, so the server sees 10.201.2.1.
//
// Names are unique per run. Processes, observation and teardown come from NsSet (ns-set.ts): destroy()
// kills every process started here and every process left in the namespaces, then deletes them; it
// is bounded in time and also runs from process exit/SIGINT/SIGTERM. The two-namespace topology of
// the benchmark (one veth, no router) is DirectPair in direct-pair.ts.
import { exec } from './proc';
import { NsSet } from './ns-set';

export { NS_PREFIX, sweepStale } from './ns-cleanup';
export { SpawnInNsOptions, LogPolicy } from './ns-set';

export type Role = 'client' | 'router' | 'server';

export const ADDR = {
  client: '10.201.1.2',
  routerClient: '10.201.1.1',
  routerServer: '10.201.2.1',
  server: '10.201.2.2',
  clientNet: '10.201.1.0/24',
  serverNet: '10.201.2.0/24',
} as const;

/** The IPv6 twin of ADDR (unique local addresses), for topologies made with { ipv6: true }. */
export const ADDR6 = {
  client: 'fd00:201:1::2',
  routerClient: 'fd00:201:1::1',
  routerServer: 'fd00:201:2::1',
  server: 'fd00:201:2::2',
  clientNet: 'fd00:201:1::/64',
  serverNet: 'fd00:201:2::/64',
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

export class Topology extends NsSet<Role> {
  /** Interface names: client's veth, router's two veths, server's veth. */
  readonly dev: { client: string; routerClient: string; routerServer: string; server: string };
  /** The address the client reaches the server at (rsock-client's --taddr). */
  readonly serverAddr: string;
  readonly ipv6: boolean;

  /** logPrefix: the log directory is `${tmpdir}/${logPrefix}-${id}` (default rsock-test). */
  constructor(o: { ipv6?: boolean; logPrefix?: string } = {}) {
    super({ client: 'cli', router: 'rtr', server: 'srv' }, o.logPrefix);
    this.ipv6 = o.ipv6 ?? false;
    this.serverAddr = this.ipv6 ? ADDR6.server : ADDR.server;
    // Interface names must fit in 15 characters: "rk" + 6 hex + 2 = 10.
    this.dev = {
      client: `rk${this.id}c0`,
      routerClient: `rk${this.id}r1`,
      routerServer: `rk${this.id}r2`,
      server: `rk${this.id}s0`,
    };
  }

  /** Creates a topology and brings it up. */
  static async create(): Promise<Topology> {
    const t = new Topology();
    await t.up();
    return t;
  }

  async up(): Promise<void> {
    await this.addNamespaces();
    const { client: C, router: R, server: S } = this.ns;
    const d = this.dev;
    const ip = (...a: string[]) => exec(['ip', ...a]);
    await ip('link', 'add', d.client, 'netns', C, 'type', 'veth', 'peer', 'name', d.routerClient, 'netns', R);
    await ip('link', 'add', d.server, 'netns', S, 'type', 'veth', 'peer', 'name', d.routerServer, 'netns', R);
    await this.initNamespaces();
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
    if (this.ipv6) await this.upIpv6();
    // Router: nftables first (loads nf_conntrack in this namespace), then the sysctls.
    await this.nft('router', this.routerRuleset());
    await this.exec('router', ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.netfilter.nf_conntrack_tcp_be_liberal=0']);
  }

  /** IPv6 on every link: addresses without duplicate address detection (usable at once), routes, forwarding. */
  private async upIpv6(): Promise<void> {
    const { client: C, router: R, server: S } = this.ns;
    const d = this.dev;
    for (const r of this.roles) await this.exec(r, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0']);
    const ip = (...a: string[]) => exec(['ip', ...a]);
    await ip('-n', C, '-6', 'addr', 'add', `${ADDR6.client}/64`, 'dev', d.client, 'nodad');
    await ip('-n', R, '-6', 'addr', 'add', `${ADDR6.routerClient}/64`, 'dev', d.routerClient, 'nodad');
    await ip('-n', R, '-6', 'addr', 'add', `${ADDR6.routerServer}/64`, 'dev', d.routerServer, 'nodad');
    await ip('-n', S, '-6', 'addr', 'add', `${ADDR6.server}/64`, 'dev', d.server, 'nodad');
    await ip('-n', C, '-6', 'route', 'add', ADDR6.serverNet, 'via', ADDR6.routerClient);
    await ip('-n', S, '-6', 'route', 'add', ADDR6.clientNet, 'via', ADDR6.routerServer);
    await this.exec('router', ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
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
${this.ipv6 ? `table ip6 rsknat6 {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${d.routerServer}" masquerade
  }
}` : ''}
`;
  }

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
}
