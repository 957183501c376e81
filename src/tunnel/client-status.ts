// rsock-client's Status for --metrics: its slots (fake TCP and UDP paths) with state, age and
// keepalive RTT, its flows, and the totals and drops from the counters it already keeps.
import { ClientPool } from '../core/client-pool';
import { Carrier } from '../core/link';
import { ConnectionStatus, FLOW_LIST, FlowStatus, ReconnectCause, Status } from '../ops/status';
import { ClientFlows, flowSource } from './client-flows';
import { dropCounts, processFields } from './status-common';

export interface ClientStatusSource {
  cfg: { serverIp: string; ludpHost: string; ludpPort: number; transport: string };
  now: number;
  startedAt: number;
  counters: Record<string, number>;
  engine: Record<string, number>;
  udp: { pool: ClientPool<Carrier>; stats(): Record<string, number>; reconnects: Record<ReconnectCause, number> } | null;
  pool: ClientPool<Carrier>;
  flows: ClientFlows;
  reconnects: Record<ReconnectCause, number>;
  /** How the log names forward `fwd` (1 and up). */
  name(fwd: number): string;
}

function connections(pool: ClientPool<Carrier>, transport: 'tcp' | 'udp', peer: string, now: number): ConnectionStatus[] {
  return pool.slots.map((s) => {
    return {
      port: s.port, state: s.state, peer, transport, ageSec: (now - s.stateSince) / 1000,
      rttMs: s.state === 'LIVE' ? s.rttMs : null, txFrames: s.sent, rxFrames: s.received,
    };
  });
}

export function clientStatus(src: ClientStatusSource): Status {
  const { counters: c, engine: e, now } = src;
  const udp = src.udp?.stats() ?? {};
  // --type=udp never dials its fake TCP slots: they are not connections.
  const conns = [...(src.udp ? connections(src.udp.pool, 'udp', src.cfg.serverIp, now) : []),
    ...(src.cfg.transport === 'udp' ? [] : connections(src.pool, 'tcp', src.cfg.serverIp, now))];
  const flows: FlowStatus[] = [];
  for (const f of src.flows.all()) {
    flows.push({ id: f.id, app: flowSource(f), target: f.fwd === 0 ? `the server's --taddr (via ${src.cfg.ludpHost}:${src.cfg.ludpPort})` : src.name(f.fwd),
      idleSec: (now - f.lastActive) / 1000, in: f.received, out: f.sent });
  }
  flows.sort((a, b) => a.idleSec - b.idleSec);
  const reconnects = { ...src.reconnects };
  for (const [k, v] of Object.entries(src.udp?.reconnects ?? {})) reconnects[k as ReconnectCause] += v;
  const drops = dropCounts(e, udp, c);
  return {
    ...processFields('rsock-client', src.startedAt),
    datagrams: { in: c.udpIn, out: c.udpOut },
    bytes: { in: c.bytesIn, out: c.bytesOut },
    drops,
    captureDropped: e.captureDropped ?? 0,
    reconnects,
    connections: conns,
    flows: flows.slice(0, FLOW_LIST),
    flowCount: src.flows.size,
    sessions: 1,
  };
}
