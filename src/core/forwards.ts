// Several forwards over one tunnel (docs/PROTOCOL.md §4, "Forwards"). The client's table (index ->
// target) rides in Join, which is resent until Joined, so it arrives although frames are never
// retransmitted; Joined answers allowed or refused per entry. Every flow id carries its forward index
// in its top 8 bits, so the server needs no per-packet lookup by address. Index 0 is --ludp -> the
// server's --taddr: a client without forwards sends today's Join and flow ids.

/** Where a client's forward sends its datagrams, as the client wrote it: resolved by the server, never by a client's say-so. */
export interface ForwardTarget {
  host: string;
  port: number;
}

/** A target the server will forward to (--taddr, --allow): the name as configured and its address. */
export interface AllowedTarget {
  host: string;
  ip: string;
  port: number;
}

/** Index 0 is --ludp; 1..31 are forwards, so a client's flow key (index, ip, port) stays exact in a double. */
export const MAX_FORWARDS = 31;
const INDEX_SHIFT = 24;
export const FLOW_COUNTER_MASK = (1 << INDEX_SHIFT) - 1;
/** The table must fit one Join frame in the smallest segment a path may have (576-byte MTU). */
export const MAX_TABLE_BYTES = 400;
const MAX_HOST = 253;

export function forwardIndex(flowId: number): number {
  return flowId >>> INDEX_SHIFT;
}

export function flowIdOf(index: number, counter: number): number {
  return ((index << INDEX_SHIFT) | (counter & FLOW_COUNTER_MASK)) >>> 0;
}

export function targetName(t: ForwardTarget): string {
  return `${t.host}:${t.port}`;
}

/** Table: count u8, then per forward (index 1, 2, ...): port u16, host length u8, host (ASCII). */
export function encodeForwardTable(targets: ForwardTarget[]): Buffer {
  if (targets.length > MAX_FORWARDS) throw new Error(`at most ${MAX_FORWARDS} forwards`);
  const parts: Buffer[] = [Buffer.from([targets.length])];
  for (const t of targets) {
    const host = Buffer.from(t.host, 'latin1');
    if (host.length === 0 || host.length > MAX_HOST || !printable(host, 0, host.length)) throw new Error(`"${t.host}" is not a host name`);
    const e = Buffer.alloc(3);
    e.writeUInt16BE(t.port, 0);
    e[2] = host.length;
    parts.push(e, host);
  }
  const table = Buffer.concat(parts);
  if (table.length > MAX_TABLE_BYTES) throw new Error(`the forward table takes ${table.length} bytes; at most ${MAX_TABLE_BYTES} fit a Join`);
  return table;
}

/**
 * The table a Join carries, or null if it carries none (an old-style client) or a malformed one. An
 * entry that is not a plausible host:port decodes as a target no allow list matches.
 */
export function decodeForwardTable(buf: Buffer, off: number, len: number): ForwardTarget[] | null {
  if (len < 1) return null;
  const n = buf[off];
  if (n > MAX_FORWARDS) return null;
  const out: ForwardTarget[] = [];
  let p = off + 1;
  const end = off + len;
  for (let i = 0; i < n; i++) {
    if (p + 3 > end) return null;
    const port = buf.readUInt16BE(p);
    const hl = buf[p + 2];
    p += 3;
    if (p + hl > end) return null;
    const ok = hl > 0 && printable(buf, p, p + hl) && port > 0;
    out.push({ host: ok ? buf.toString('latin1', p, p + hl) : '', port });
    p += hl;
  }
  return out;
}

/** Joined's payload when Join had a table: count u8, then one byte per forward, 1 allowed, 0 refused. */
export function encodeForwardAnswers(allowed: boolean[]): Buffer {
  return Buffer.from([allowed.length, ...allowed.map((a) => (a ? 1 : 0))]);
}

/**
 * The answers in a Joined, or null when it has none: a server that does not know forwards (whose
 * Joined under tls holds zeros, the padding up to the shortest TLS record, hence count 0 means none).
 */
export function decodeForwardAnswers(buf: Buffer, off: number, len: number): boolean[] | null {
  if (len < 1 || buf[off] === 0 || len < 1 + buf[off]) return null;
  const out: boolean[] = [];
  for (let i = 0; i < buf[off]; i++) out.push(buf[off + 1 + i] === 1);
  return out;
}

/** The allowed target a client's forward names: same port, and the configured name or its address. */
export function matchTarget(t: ForwardTarget, allowed: readonly AllowedTarget[]): AllowedTarget | null {
  if (!t.host) return null;
  const host = t.host.toLowerCase();
  for (const a of allowed) {
    if (a.port === t.port && (a.host.toLowerCase() === host || a.ip === host)) return a;
  }
  return null;
}

function printable(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] <= 0x20 || buf[i] >= 0x7f) return false;
  return true;
}

/** A session's forwards as the server resolved them from its client's table: index i+1 -> target, null if refused. */
export interface SessionForwards {
  table: ForwardTarget[];
  targets: (AllowedTarget | null)[];
}

export function resolveForwards(table: ForwardTarget[], allowed: readonly AllowedTarget[]): SessionForwards {
  return { table, targets: table.map((t) => matchTarget(t, allowed)) };
}

/**
 * Where a session's flow goes: undefined for --taddr (index 0, or a client without a table), the
 * allowed target, or a string saying why the flow is refused.
 */
export function flowTarget(fw: SessionForwards | null, flowId: number): AllowedTarget | undefined | string {
  const i = forwardIndex(flowId);
  if (!fw || i === 0) return undefined;
  const t = fw.targets[i - 1];
  if (t) return t;
  const asked = fw.table[i - 1];
  if (!asked) return `forward #${i}, which the client's table does not have`;
  return asked.host ? `${targetName(asked)}, which is not in --allow` : `forward #${i}, whose target is malformed`;
}
