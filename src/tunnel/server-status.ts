// rsock-server's Status for --metrics: every connection and UDP path of every client with its port
// and age, the flows (the most recently active first), and the totals and drops.
import { hex, ServerSessions } from '../core/server-sessions';
import { isUdpLink } from '../core/udp-link';
import { ConnectionStatus, FLOW_LIST, FlowStatus, RECONNECT_CAUSES, Status } from '../ops/status';
import { dropCounts, processFields } from './status-common';
import { ipPort } from './server-events';

export function serverStatus(sessions: ServerSessions, c: Record<string, number>, e: Record<string, number>,
  udp: Record<string, number>, now: number, startedAt: number): Status {
  const connections: ConnectionStatus[] = [];
  for (const l of sessions.links) {
    connections.push({
      port: l.path.local.port, state: l.session ? 'LIVE' : 'HELLO', peer: ipPort(l), transport: isUdpLink(l) ? 'udp' : 'tcp',
      ageSec: (now - l.acceptedAt) / 1000, rttMs: null, txFrames: l.sent, rxFrames: l.received,
    });
  }
  connections.sort((a, b) => a.port - b.port || a.peer.localeCompare(b.peer));
  const flows: FlowStatus[] = [];
  for (const f of sessions.flows.values()) {
    flows.push({ id: f.id, app: `client ${hex(f.session.id)}`, target: f.sock < 0 ? 'refused' : `udp socket ${f.sock}`,
      idleSec: (now - f.lastActive) / 1000, in: f.received, out: f.sent });
  }
  flows.sort((a, b) => a.idleSec - b.idleSec);
  const drops = dropCounts(e, udp, c);
  return {
    ...processFields('rsock-server', startedAt),
    datagrams: { in: c.fromTarget, out: c.toTarget },
    bytes: { in: c.bytesIn, out: c.bytesOut },
    drops,
    captureDropped: e.captureDropped ?? 0,
    reconnects: Object.fromEntries(RECONNECT_CAUSES.map((k) => [k, 0])) as Status['reconnects'],
    connections,
    flows: flows.slice(0, FLOW_LIST),
    flowCount: sessions.flowCount,
    sessions: sessions.sessionCount,
  };
}
