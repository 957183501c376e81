// What a running rsock-client or rsock-server reports about itself (`--metrics`): one Status object,
// served as JSON at /status and as Prometheus text at /metrics (names and types follow Prometheus'
// conventions: `_total` counters, gauges without it, base units, `# HELP` and `# TYPE` for each).
import type { DownCause } from '../core/client-pool';

/** Why a frame or datagram was dropped. */
export const DROP_CAUSES = ['forged', 'replayed', 'malformed', 'too_big', 'no_flow', 'no_connection', 'refused'] as const;
export type DropCause = (typeof DROP_CAUSES)[number];
/** Why a client connection went down and was redialed: the pool's own causes. */
export type ReconnectCause = DownCause;
export const RECONNECT_CAUSES: readonly ReconnectCause[] = ['reset', 'fin', 'close', 'silence', 'dial_failure', 'handshake'];

export interface ConnectionStatus {
  /** The server port (client) or the local port the client connected to (server). */
  port: number;
  /** Client: BACKOFF, DIALING, HELLO or LIVE; server: LIVE. */
  state: string;
  /** The other end: the server (client) or the client's address (server). */
  peer: string;
  transport: 'tcp' | 'udp';
  /** Seconds in this state. */
  ageSec: number;
  /** Round trip of the last keepalive, when known (the client measures it). */
  rttMs: number | null;
  /** Datagram frames sent and received on this connection. */
  txFrames: number;
  rxFrames: number;
}

export interface FlowStatus {
  id: number;
  /** Client: the app's address; server: the client's session. */
  app: string;
  target: string;
  idleSec: number;
  /** Datagrams from the app (into the tunnel) and to it. */
  in: number;
  out: number;
}

export interface Status {
  program: 'rsock-client' | 'rsock-server';
  version: string;
  protocol: number;
  pid: number;
  /** Unix time, seconds. */
  startTime: number;
  uptimeSec: number;
  /** in: datagrams from the apps (client: local apps; server: the targets) into the tunnel; out: delivered to them. */
  datagrams: { in: number; out: number };
  bytes: { in: number; out: number };
  drops: Record<DropCause, number>;
  /** Packets the capture could not keep up with (the kernel's ring was full). */
  captureDropped: number;
  reconnects: Record<ReconnectCause, number>;
  connections: ConnectionStatus[];
  /** At most FLOW_LIST flows, the most recently active first; flowCount counts them all. */
  flows: FlowStatus[];
  flowCount: number;
  /** Server: clients (sessions); client: 1. */
  sessions: number;
}

export const FLOW_LIST = 200;

type Sample = [labels: Record<string, string>, value: number];

function metric(out: string[], name: string, type: 'counter' | 'gauge', help: string, samples: Sample[]): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, v] of samples) {
    const l = Object.entries(labels).map(([k, x]) => `${k}="${x.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
    out.push(`${name}${l.length ? `{${l.join(',')}}` : ''} ${Number.isFinite(v) ? v : 0}`);
  }
}

/** The Prometheus text exposition format (version 0.0.4). */
export function prometheusText(s: Status): string {
  const out: string[] = [];
  const dir = (x: { in: number; out: number }): Sample[] => [[{ direction: 'in' }, x.in], [{ direction: 'out' }, x.out]];
  metric(out, 'rsock_info', 'gauge', 'The program, its version and its wire protocol version.', [
    [{ program: s.program, version: s.version, protocol: String(s.protocol) }, 1],
  ]);
  metric(out, 'rsock_start_time_seconds', 'gauge', 'When the process started, in Unix time.', [[{}, s.startTime]]);
  metric(out, 'rsock_datagrams_total', 'counter', 'App datagrams: in = from the apps into the tunnel, out = delivered to the apps.', dir(s.datagrams));
  metric(out, 'rsock_bytes_total', 'counter', 'Bytes of those datagrams (UDP payload).', dir(s.bytes));
  metric(out, 'rsock_dropped_total', 'counter', 'Frames or datagrams dropped, by cause.', DROP_CAUSES.map((c) => [{ cause: c }, s.drops[c]]));
  metric(out, 'rsock_capture_dropped_packets_total', 'counter', 'Packets the capture lost because its ring was full.', [[{}, s.captureDropped]]);
  if (s.program === 'rsock-client') {
    metric(out, 'rsock_reconnects_total', 'counter', 'Connections that went down and were dialed again, by cause.',
      RECONNECT_CAUSES.map((c) => [{ cause: c }, s.reconnects[c]]));
  }
  const states = new Map<string, number>();
  for (const st of s.program === 'rsock-client' ? ['BACKOFF', 'DIALING', 'HELLO', 'LIVE'] : ['LIVE']) states.set(st, 0);
  for (const c of s.connections) states.set(c.state, (states.get(c.state) ?? 0) + 1);
  metric(out, 'rsock_connections', 'gauge', 'Connections by state.', [...states].map(([st, n]) => [{ state: st.toLowerCase() }, n]));
  metric(out, 'rsock_flows', 'gauge', 'App flows.', [[{}, s.flowCount]]);
  metric(out, 'rsock_sessions', 'gauge', 'Client sessions (on the client: 1).', [[{}, s.sessions]]);
  return `${out.join('\n')}\n`;
}
