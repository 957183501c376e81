// What the benchmark needs of a topology: the two-namespace DirectPair (the veth path) and the
// integration tests' Topology with its strict conntrack router (the router path) both are one, so
// every probe, instance and measurement runs unchanged on either path.
import type { PairRole } from '../test/lib/direct-pair';
import type { ExecOptions, ExecResult } from '../test/lib/proc';
import type { TunnelHost } from '../test/lib/rsock';

export interface BenchHost extends TunnelHost {
  readonly logDir: string;
  exec(role: PairRole, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  devStats<K extends string>(role: PairRole, dev: string, names: readonly K[]): Promise<Record<K, number>>;
  tcpListening(role: PairRole, port: number): Promise<boolean>;
}
