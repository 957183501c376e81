// The client's app flows: one per source address on --ludp, with an id the frames carry. Flows live
// here, not in connections, so they survive every reconnect.
import { endpointText, Ip6Words, key6, keyWithPort } from '../core/addr';
import { Flow, FlowTable } from '../core/flow-table';
import { UDP_RX } from '../io/records';

export interface ClientFlow extends Flow {
  /** The source's address key (src/core/addr.ts) and, for IPv6, its words. */
  ip: number;
  port: number;
  ip6: Ip6Words | null;
}

export function flowSource(flow: ClientFlow): string {
  return endpointText(flow);
}

const SWEEP_BUDGET = 500;

export class ClientFlows {
  private readonly bySource: FlowTable<number, ClientFlow>;
  private readonly byId = new Map<number, ClientFlow>();
  private nextId = 1;

  constructor(durationMs: number, private readonly onOpen: (flow: ClientFlow) => void) {
    this.bySource = new FlowTable(durationMs);
  }

  get size(): number {
    return this.bySource.size;
  }

  /**
   * The flow of the datagram of UDP_RX record `m`, opened on first sight; marked active. Null for the
   * rare IPv6 source whose key collides with another flow's.
   */
  fromRecord(meta: Uint32Array, m: number, now: number): ClientFlow | null {
    const port = meta[m + UDP_RX.SRC_PORT];
    if (meta[m + UDP_RX.IP_VERSION] !== 6) return this.from(meta[m + UDP_RX.SRC_IP], port, now);
    const a = m + UDP_RX.SRC_IP6;
    const ip = key6(meta[a], meta[a + 1], meta[a + 2], meta[a + 3]);
    return this.from(ip, port, now, meta, a);
  }

  /** The flow of a datagram from ip:port (IPv6: its words at words[at..at+3]), opened on first sight. */
  from(ip: number, port: number, now: number, words: Uint32Array | null = null, at = 0): ClientFlow | null {
    const key = keyWithPort(ip, port);
    let flow = this.bySource.get(key);
    if (flow && words) {
      const w = flow.ip6;
      if (!w || flow.port !== port || w[0] !== words[at] || w[1] !== words[at + 1] || w[2] !== words[at + 2] || w[3] !== words[at + 3]) return null;
    }
    if (!flow) {
      const ip6 = words && ip >= 0x100000000 ? words.slice(at, at + 4) : null;
      flow = { id: this.nextId, lastActive: now, ip, port, ip6 };
      this.nextId = (this.nextId + 1) >>> 0 || 1;
      this.bySource.set(key, flow);
      this.byId.set(flow.id, flow);
      this.onOpen(flow);
    }
    flow.lastActive = now;
    return flow;
  }

  byFlowId(id: number): ClientFlow | undefined {
    return this.byId.get(id);
  }

  /** Closes flows idle (both ways) for the duration, a bounded number per call. */
  sweep(now: number, onExpired: (flow: ClientFlow) => void): void {
    this.bySource.sweep(now, SWEEP_BUDGET, (_key, flow) => {
      this.byId.delete(flow.id);
      onExpired(flow);
    });
  }
}
