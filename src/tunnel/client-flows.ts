// The client's app flows: one per source address on each local endpoint (--ludp, --forward), with an
// id the frames carry, whose top bits say the endpoint (core/forwards.ts). Flows live here, not in
// connections, so they survive every reconnect.
import { endpointText, Ip6Words, key6, keyWithPort } from '../core/addr';
import { Flow, FlowTable } from '../core/flow-table';
import type { Counted } from '../core/link';
import { FLOW_COUNTER_MASK, flowIdOf } from '../core/forwards';
import { UDP_RX } from '../io/records';

export interface ClientFlow extends Flow, Counted {
  /** Forward index: 0 for --ludp, else the --forward's place in the table (1-based). */
  fwd: number;
  /** The source's address key (src/core/addr.ts) and, for IPv6, its words. */
  ip: number;
  port: number;
  ip6: Ip6Words | null;
  /** A flow of a refused forward is dropped here, and said so once. */
  refusedLogged?: boolean;
}

export function flowSource(flow: ClientFlow): string {
  return endpointText(flow);
}

const SWEEP_BUDGET = 500;

export class ClientFlows {
  /** One table per local endpoint, so that a source's key needs no room for the endpoint. */
  private readonly bySource = new Map<number, FlowTable<number, ClientFlow>>();
  private readonly byId = new Map<number, ClientFlow>();
  private counter = 1;

  constructor(private readonly durationMs: number, private readonly onOpen: (flow: ClientFlow) => void) {}

  /** Every open flow. */
  all(): IterableIterator<ClientFlow> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * The flow of the datagram of UDP_RX record `m`, which came to endpoint `fwd`, opened on first sight;
   * marked active. Null for the rare IPv6 source whose key collides with another flow's.
   */
  fromRecord(fwd: number, meta: Uint32Array, m: number, now: number): ClientFlow | null {
    const port = meta[m + UDP_RX.SRC_PORT];
    if (meta[m + UDP_RX.IP_VERSION] !== 6) return this.from(fwd, meta[m + UDP_RX.SRC_IP], port, now);
    const a = m + UDP_RX.SRC_IP6;
    const ip = key6(meta[a], meta[a + 1], meta[a + 2], meta[a + 3]);
    return this.from(fwd, ip, port, now, meta, a);
  }

  /** The flow of a datagram from ip:port (IPv6: its words at words[at..at+3]) to endpoint `fwd`, opened on first sight. */
  from(fwd: number, ip: number, port: number, now: number, words: Uint32Array | null = null, at = 0): ClientFlow | null {
    const key = keyWithPort(ip, port);
    let table = this.bySource.get(fwd);
    if (!table) this.bySource.set(fwd, (table = new FlowTable(this.durationMs)));
    let flow = table.get(key);
    if (flow && words) {
      const w = flow.ip6;
      if (!w || flow.port !== port || w[0] !== words[at] || w[1] !== words[at + 1] || w[2] !== words[at + 2] || w[3] !== words[at + 3]) return null;
    }
    if (!flow) {
      let id = flowIdOf(fwd, this.counter);
      // The counter wraps after 16M flows: skip ids still in use rather than mix two flows.
      for (let i = 0; this.byId.has(id) && i < 1000; i++) {
        this.counter = (this.counter + 1) & FLOW_COUNTER_MASK || 1;
        id = flowIdOf(fwd, this.counter);
      }
      const ip6 = words && ip >= 0x100000000 ? words.slice(at, at + 4) : null;
      flow = { id, fwd, lastActive: now, ip, port, ip6, sent: 0, received: 0 };
      this.counter = (this.counter + 1) & FLOW_COUNTER_MASK || 1;
      table.set(key, flow);
      this.byId.set(flow.id, flow);
      this.onOpen(flow);
    }
    flow.lastActive = now;
    return flow;
  }

  byFlowId(id: number): ClientFlow | undefined {
    return this.byId.get(id);
  }

  /** Closes flows idle (both ways) for the duration, a bounded number per call and endpoint. */
  sweep(now: number, onExpired: (flow: ClientFlow) => void): void {
    for (const table of this.bySource.values()) {
      table.sweep(now, SWEEP_BUDGET, (_key, flow) => {
        this.byId.delete(flow.id);
        onExpired(flow);
      });
    }
  }
}
