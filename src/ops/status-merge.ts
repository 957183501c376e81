// With --workers, each worker thread reports its own Status; the process reports their sum: counters
// added, connections and flows listed together (the most recently active flows first).
import { FLOW_LIST, Status } from './status';

function addInto<T extends Record<string, number>>(into: T, from: T): void {
  for (const k of Object.keys(from) as (keyof T)[]) into[k] = ((into[k] ?? 0) + from[k]) as T[keyof T];
}

/** The process's Status from its workers' (at least one). The client counts one session per process. */
export function mergeStatus(parts: Status[]): Status {
  const first = parts[0];
  const out: Status = {
    ...first,
    datagrams: { in: 0, out: 0 },
    bytes: { in: 0, out: 0 },
    drops: { ...first.drops },
    captureDropped: 0,
    reconnects: { ...first.reconnects },
    connections: [],
    flows: [],
    flowCount: 0,
    sessions: 0,
  };
  for (const k of Object.keys(out.drops) as (keyof Status['drops'])[]) out.drops[k] = 0;
  for (const k of Object.keys(out.reconnects) as (keyof Status['reconnects'])[]) out.reconnects[k] = 0;
  for (const p of parts) {
    addInto(out.datagrams, p.datagrams);
    addInto(out.bytes, p.bytes);
    addInto(out.drops, p.drops);
    addInto(out.reconnects, p.reconnects);
    out.captureDropped += p.captureDropped;
    out.connections.push(...p.connections);
    out.flows.push(...p.flows);
    out.flowCount += p.flowCount;
    out.sessions += p.sessions;
    out.uptimeSec = Math.max(out.uptimeSec, p.uptimeSec);
  }
  if (first.program === 'rsock-client') out.sessions = 1;
  out.flows.sort((a, b) => a.idleSec - b.idleSec);
  out.flows.length = Math.min(out.flows.length, FLOW_LIST);
  return out;
}

/** Counters (SIGUSR2, the last log line) summed over the workers. */
export function sumStats(parts: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, v] of Object.entries(p)) if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
  return out;
}
