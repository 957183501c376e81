// The client's app flows: one per source address on --ludp, with an id the frames carry. Flows live
// here, not in connections, so they survive every reconnect.
import { Flow, FlowTable } from '../core/flow-table';
import { intToIp } from '../core/ipv4';

export interface ClientFlow extends Flow {
  ip: number;
  port: number;
}

/** A flow's key: its source address and port in one number (48 bits, exact in a double). */
function flowKey(ip: number, port: number): number {
  return ip * 65536 + port;
}

export function flowSource(flow: ClientFlow): string {
  return `${intToIp(flow.ip)}:${flow.port}`;
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

  /** The flow of a datagram from ip:port, opened on first sight; marked active. */
  from(ip: number, port: number, now: number): ClientFlow {
    const key = flowKey(ip, port);
    let flow = this.bySource.get(key);
    if (!flow) {
      flow = { id: this.nextId, lastActive: now, ip, port };
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
