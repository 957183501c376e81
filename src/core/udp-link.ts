// A UDP path (--type=udp|all): a client socket and one server port, with the same greetings, keys and
// Join as a fake TCP connection, but frames in datagrams (src/core/udp-wire.ts) instead of a stream.
import type { Endpoint } from './fake-tcp';
import type { Carrier, LinkWire, PathState } from './link';
import { ReplayWindow } from './replay';

export class UdpPath implements PathState {
  open = true;
  lastRecvAt: number;
  /** The counter of our next datagram: its frame's nonce. */
  txCounter = 0;
  /** K_counter of each direction, once the greetings gave the path its keys. */
  txCounterKey: Buffer | null = null;
  rxCounterKey: Buffer | null = null;

  constructor(readonly local: Endpoint, readonly remote: Endpoint, now: number) {
    this.lastRecvAt = now;
  }

  abort(_reason: string): void {
    this.open = false;
  }
}

export interface UdpLink extends Carrier {
  /** The transport socket (the client's own connected one, or the server's socket of this port). */
  readonly fd: number;
  readonly path: UdpPath;
  /** A connected socket (the client's) sends to its peer; the server's port socket names the client each time. */
  readonly connected: boolean;
}

export function newUdpLink(fd: number, connected: boolean, local: Endpoint, remote: Endpoint, maxDatagram: number, now: number): UdpLink {
  const wire: LinkWire = { txSlot: -1, rxSlot: -1, rxFrom: 0, replay: new ReplayWindow() };
  return { fd, connected, path: new UdpPath(local, remote, now), maxDatagram, wire };
}

/** --type: which transports carry the frames. */
export type TransportType = 'tcp' | 'udp' | 'all';

export function isUdpLink<T extends Carrier>(link: T): link is T & UdpLink {
  return 'connected' in link;
}
