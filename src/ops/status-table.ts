// The table `rsock-client status` and `rsock-server status` print: the process, its totals and drops,
// every connection with its state, age, keepalive RTT and frames/s each way, then the flows. Rates
// come from two samples of /status (`prev` taken `dtSec` earlier); without one they show as "-".
import { ConnectionStatus, DROP_CAUSES, FlowStatus, RECONNECT_CAUSES, Status } from './status';

export function duration(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${units[i]}`;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');

function rate(now: number, before: number | undefined, dtSec: number): string {
  if (before === undefined || dtSec <= 0 || now < before) return '-';
  const r = (now - before) / dtSec;
  return r >= 100 ? int(r) : r.toFixed(1);
}

function table(head: string[], rows: string[][], right: Set<number>): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (c: string[]) => c.map((x, i) => (right.has(i) ? x.padStart(w[i]) : x.padEnd(w[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

const connKey = (c: ConnectionStatus, i: number) => `${c.transport}/${c.port}/${c.peer}/${i}`;

export function renderStatus(s: Status, prev: Status | null, dtSec: number): string {
  const lines: string[] = [];
  const p = prev && prev.pid === s.pid ? prev : null;
  lines.push(`${s.program} ${s.version} (wire protocol ${s.protocol}), pid ${s.pid}, up ${duration(s.uptimeSec)}`);
  lines.push(`datagrams: ${int(s.datagrams.in)} in (${rate(s.datagrams.in, p?.datagrams.in, dtSec)}/s), ` +
    `${int(s.datagrams.out)} out (${rate(s.datagrams.out, p?.datagrams.out, dtSec)}/s); bytes: ${bytes(s.bytes.in)} in, ${bytes(s.bytes.out)} out`);
  lines.push(`dropped: ${DROP_CAUSES.map((c) => `${c.replace(/_/g, ' ')} ${int(s.drops[c])}`).join(', ')}; capture ${int(s.captureDropped)}`);
  if (s.program === 'rsock-client') {
    lines.push(`reconnects: ${RECONNECT_CAUSES.map((c) => `${c.replace(/_/g, ' ')} ${int(s.reconnects[c])}`).join(', ')}`);
  } else {
    lines.push(`sessions: ${s.sessions}`);
  }
  lines.push('');
  // Connections keep their order between samples (the slot order), so index i names the same one.
  const before = new Map<string, ConnectionStatus>();
  p?.connections.forEach((c, i) => before.set(connKey(c, i), c));
  const live = s.connections.filter((c) => c.state === 'LIVE').length;
  lines.push(`connections: ${live} of ${s.connections.length} live`);
  lines.push(...table(['PORT', 'VIA', 'PEER', 'STATE', 'AGE', 'RTT', 'RX/s', 'TX/s'], s.connections.map((c, i) => {
    const b = before.get(connKey(c, i));
    return [String(c.port), c.transport, c.peer, c.state, duration(c.ageSec), c.rttMs === null ? '-' : `${c.rttMs.toFixed(1)} ms`,
      rate(c.rxFrames, b?.rxFrames, dtSec), rate(c.txFrames, b?.txFrames, dtSec)];
  }), new Set([0, 5, 6, 7])));
  lines.push('');
  const flowsBefore = new Map<number, FlowStatus>(p?.flows.map((f) => [f.id, f]) ?? []);
  const shown = s.flows.length < s.flowCount ? ` (the ${s.flows.length} most recently active shown)` : '';
  lines.push(`flows: ${s.flowCount}${shown}`);
  if (s.flows.length) {
    lines.push(...table(['FLOW', 'APP', 'TARGET', 'IDLE', 'IN/s', 'OUT/s', 'IN', 'OUT'], s.flows.map((f) => {
      const b = flowsBefore.get(f.id);
      return [String(f.id), f.app, f.target, duration(f.idleSec), rate(f.in, b?.in, dtSec), rate(f.out, b?.out, dtSec), int(f.in), int(f.out)];
    }), new Set([0, 3, 4, 5, 6, 7])));
  }
  return `${lines.join('\n')}\n`;
}
