// The client's app flows: one per source address on each local endpoint (--ludp, --forward), with an
// id the frames carry, whose top bits say the endpoint (core/forwards.ts). Flows live here, not in
// connections, so they survive every reconnect.
import { Flow, FlowTable } from '../core/flow-table';
import { FLOW_COUNTER_MASK, flowIdOf } from '../core/forwards';
import { intToIp } from '../core/ipv4';

export interface ClientFlow extends Flow {
  /** Forward index: 0 for --ludp, else the --forward's place in the table (1-based). */
  fwd: number;
  ip: number;
  port: number;
  /** A flow of a refused forward is dropped here, and said so once. */
  refusedLogged?: boolean;
}

/** A flow's key: its endpoint, source address and port in one number (at most 53 bits, exact in a double). */
function flowKey(fwd: number, ip: number, port: number): number {
  return (fwd * 0x100000000 + ip) * 65536 + port;
}

export function flowSource(flow: ClientFlow): string {
  return `${intToIp(flow.ip)}:${flow.port}`;
}

const SWEEP_BUDGET = 500;

export class ClientFlows {
  private readonly bySource: FlowTable<number, ClientFlow>;
  private readonly byId = new Map<number, ClientFlow>();
  private counter = 1;

  constructor(durationMs: number, private readonly onOpen: (flow: ClientFlow) => void) {
    this.bySource = new FlowTable(durationMs);
  }

  /** Every open flow. */
  all(): IterableIterator<ClientFlow> {
    return this.byId.values();
  }

  get size(): number {
    return this.bySource.size;
  }

  /** The flow of a datagram from ip:port to endpoint `fwd`, opened on first sight; marked active. */
  from(fwd: number, ip: number, port: number, now: number): ClientFlow {
    const key = flowKey(fwd, ip, port);
    let flow = this.bySource.get(key);
    if (!flow) {
      let id = flowIdOf(fwd, this.counter);
      // The counter wraps after 16M flows: skip ids still in use rather than mix two flows.
      for (let i = 0; this.byId.has(id) && i < 1000; i++) {
        this.counter = (this.counter + 1) & FLOW_COUNTER_MASK || 1;
        id = flowIdOf(fwd, this.counter);
      }
      flow = { id, fwd, lastActive: now, ip, port };
      this.counter = (this.counter + 1) & FLOW_COUNTER_MASK || 1;
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
