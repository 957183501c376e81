// Two-namespace topology of the benchmark: one veth pair, MTU 1500, no router, no filtering.
//
//   client ns 10.202.0.1/24  <-- veth -->  server ns 10.202.0.2/24
//
// Processes, observation and teardown come from NsSet (ns-set.ts), as for the three-namespace
// Topology of the integration tests (netns.ts): namespaces rsk-<id>-cli and rsk-<id>-srv.
import { exec } from './proc';
import { NsSet } from './ns-set';

export type PairRole = 'client' | 'server';

export const PAIR_ADDR = { client: '10.202.0.1', server: '10.202.0.2', prefix: 24 } as const;

export class DirectPair extends NsSet<PairRole> {
  readonly dev: { client: string; server: string };
  /** The address the client reaches the server at (rsock-client's --taddr). */
  readonly serverAddr: string = PAIR_ADDR.server;
  readonly mtu: number;

  /** logPrefix: the log directory is `${tmpdir}/${logPrefix}-${id}`. */
  constructor(opts: { logPrefix?: string; mtu?: number } = {}) {
    super({ client: 'cli', server: 'srv' }, opts.logPrefix ?? 'rsock-test');
    this.mtu = opts.mtu ?? 1500;
    // Interface names must fit in 15 characters: "rk" + 6 hex + 2 = 10.
    this.dev = { client: `rk${this.id}c0`, server: `rk${this.id}s0` };
  }

  static async create(opts?: { logPrefix?: string; mtu?: number }): Promise<DirectPair> {
    const t = new DirectPair(opts);
    await t.up();
    return t;
  }

  async up(): Promise<void> {
    await this.addNamespaces();
    const { client: C, server: S } = this.ns;
    const d = this.dev;
    const mtu = String(this.mtu);
    const ip = (...a: string[]) => exec(['ip', ...a]);
    await ip('link', 'add', d.client, 'netns', C, 'mtu', mtu, 'type', 'veth', 'peer', 'name', d.server, 'netns', S, 'mtu', mtu);
    await this.initNamespaces();
    await ip('-n', C, 'addr', 'add', `${PAIR_ADDR.client}/${PAIR_ADDR.prefix}`, 'dev', d.client);
    await ip('-n', S, 'addr', 'add', `${PAIR_ADDR.server}/${PAIR_ADDR.prefix}`, 'dev', d.server);
    await ip('-n', C, 'link', 'set', d.client, 'up');
    await ip('-n', S, 'link', 'set', d.server, 'up');
  }
}
