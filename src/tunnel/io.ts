// Everything the tunnel does to the outside world, as one interface handed to the client and the
// server: packet capture and injection in batches, the kernel sockets that do the handshakes, the
// local UDP sockets, the cryptography, the clock and the timers. src/io/native-io.ts implements it on the
// addon; test/sim implements it on an in-memory network with a virtual clock.
import type { Crypto } from '../core/crypto';
import type { Capture, CaptureBatchFn, Injector, SocketWatcher, UdpBatchFn, UdpMux, WatcherEvent } from '../io/native';

export type { Capture, CaptureBatchFn, Injector, SocketWatcher, UdpMux, WatcherEvent, UdpBatchFn };

/** Which segments a capture takes: TCP on one of `ports`, optionally from or to one host. */
export interface CaptureSpec {
  device: string;
  ports: number[];
  /** Whether `ports` are the segments' source ports (client: the server's) or destination ports (server: its own). */
  portSide: 'src' | 'dst';
  /** Only segments from this address, IPv4 or IPv6 (the client's server). */
  fromHost?: string;
  /** Only segments to this address (a server listening on one address, not "", "0.0.0.0" or "::"). */
  toHost?: string;
  /** Only segments to these local ports, [lo, hi] (a client worker's own: its dials come from them). */
  localPorts?: [number, number];
}

export interface Timers {
  /** Calls fn once after `ms`, unless the returned function is called first. */
  after(ms: number, fn: () => void): () => void;
  /** Calls fn once, after the current batch of work (end of this event-loop turn). */
  soon(fn: () => void): void;
}

export interface TunnelIo {
  /** Milliseconds from a monotonic clock. */
  readonly clock: () => number;
  readonly timers: Timers;
  readonly crypto: Crypto;
  /** Throws a clear Error (no such device, no permission). onError: the capture cannot go on. */
  openCapture(spec: CaptureSpec, onBatch: CaptureBatchFn, onError: (err: Error) => void): Capture;
  openInjector(): Injector;
  openSockets(onEvent: (ev: WatcherEvent) => void): SocketWatcher;
  openUdp(onBatch: UdpBatchFn): UdpMux;
  /**
   * Takes over `fd`, a connection SocketWatcher.handBack() gave back to the kernel because it is an
   * active probe, not a tunnel client: spliced to the decoy when there is one, else ended with a FIN
   * (closed within 5 s). The I/O layer owns and closes the fd from here on; it logs nothing itself.
   */
  serveProbe(fd: number): void;
}
