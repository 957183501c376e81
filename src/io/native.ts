// Typed surface of the C++ addon (build/Release/rsock_native.node).
// The addon does raw I/O only: capture, inject, kernel-socket handshake help and a batch MAC.
// It makes no protocol decisions; every seq, ack, flag and window comes from the TypeScript core.
import * as path from 'path';

/** Stride (in u32 words) of one packet's metadata in Injector.send(). */
export const TX_STRIDE = 10;
/** Word offsets inside one TX metadata record. IPs are IPv4 in host byte order (a.b.c.d => a<<24|b<<16|c<<8|d, as unsigned). */
export const TX = {
  SRC_IP: 0, DST_IP: 1, SRC_PORT: 2, DST_PORT: 3, SEQ: 4, ACK: 5,
  /** TCP flags in the low 8 bits (FIN=1 SYN=2 RST=4 PSH=8 ACK=16). */
  FLAGS: 6,
  /** The 16-bit window field as it goes on the wire (already scaled down by the caller). */
  WINDOW: 7,
  /** Byte offset and length of the TCP payload inside the data Buffer. */
  PAYLOAD_OFF: 8, PAYLOAD_LEN: 9,
} as const;

export interface CaptureOptions {
  /** Device name, or "any". */
  device: string;
  /** libpcap filter expression (compiled with pcap_compile, optimised). */
  filter: string;
  /** Bytes kept per packet; must cover GRO-merged segments. Default 65535. */
  snaplen?: number;
  /**
   * Kernel ring size in bytes. Default 32 MiB. Immediate mode uses TPACKET_V2, whose slots are all
   * snaplen-sized: at snaplen 65535 a slot takes 128 KiB, so 32 MiB holds 256 packets (8 MiB only 64).
   */
  bufferBytes?: number;
  /** Max packets per JS batch. Default 256. */
  maxBatch?: number;
  /** Capture only packets coming in to this host (pcap_setdirection PCAP_D_IN). Default true. */
  inboundOnly?: boolean;
}

export interface CaptureStats {
  /** Packets delivered to JS. */ delivered: number;
  /** Batches delivered to JS. */ batches: number;
  /** pcap_stats ps_drop: dropped by the kernel because the ring was full. */ dropped: number;
  /** pcap_stats ps_ifdrop. */ ifDropped: number;
  /** Packets skipped because the link header was unknown or the packet was not IPv4. */ skipped: number;
}

/**
 * Called on the JS thread with one batch. `data` holds the IPv4 packets back to back, link header
 * already stripped; `meta` holds (offset, length) pairs, `count` of them. The buffers are owned by
 * the callee after the call (the addon never reuses them). A packet's length is its IP total length
 * (link padding removed), except for a packet longer than snaplen: that one is delivered as captured,
 * shorter than its IP total length says.
 */
export type CaptureBatchFn = (data: Buffer, meta: Uint32Array, count: number) => void;

export interface Capture {
  stats(): CaptureStats;
  /** Stops the thread and closes the pcap handle. Idempotent. An open capture keeps the process alive. */
  close(): void;
}

export interface InjectorStats {
  sent: number;
  /** Packets the kernel refused (sendmmsg/sendto error), e.g. EMSGSIZE, ENOBUFS, EPERM from a firewall. */
  errors: number;
  /** strerror text of the last send error, or "". */
  lastError: string;
}

export interface Injector {
  /**
   * Builds `count` IPv4+TCP segments with libnet from `meta` (TX_STRIDE words each, see TX) and the
   * payload bytes in `data`, computes checksums, and sends them with one batched syscall where
   * possible. The IP header has DF set, TTL 64, id chosen by the kernel. Returns how many were sent.
   * Send errors on single packets are counted in stats(), not thrown.
   */
  send(data: Buffer, meta: Uint32Array, count: number): number;
  stats(): InjectorStats;
  close(): void;
}

/** What a kernel TCP socket's handshake produced; everything the fake-TCP connection needs to take over. */
export interface HandshakeInfo {
  fd: number;
  localIp: string; localPort: number;
  remoteIp: string; remotePort: number;
  /** Our next sequence number (own ISN+1), read with TCP_REPAIR/TCP_QUEUE_SEQ. */
  sndNxt: number;
  /** The peer's next sequence number (peer ISN+1). */
  rcvNxt: number;
  /** Window scale we must apply to our window field (what we advertised, tcpi_rcv_wscale). */
  rcvWscale: number;
  /** Window scale the peer advertised (tcpi_snd_wscale). */
  sndWscale: number;
  /** MSS from TCP_INFO (tcpi_snd_mss). */
  mss: number;
}

export type WatcherEvent =
  | ({ type: 'accepted'; listenFd: number } & HandshakeInfo)
  | ({ type: 'connected' } & HandshakeInfo)
  | { type: 'failed'; fd: number; errno: number; error: string };

export interface SocketWatcher {
  /**
   * Creates a TCP listening socket on ip:port (ip "" or "0.0.0.0" for any) with SO_REUSEADDR and a
   * classic BPF socket filter that drops every segment carrying payload (so injected data never reaches
   * the kernel's TCP, while the handshake still works), then listen(). Accepted sockets are reported
   * as 'accepted' events after the watcher has learned their sequence numbers and replaced the filter
   * with one that drops everything. Throws Error("listen 0.0.0.0:10001: Address already in use") etc.
   */
  listen(ip: string, port: number, backlog: number): number;
  /**
   * Creates a socket, attaches the payload-dropping filter, binds to srcIp ("" = kernel's choice) and
   * starts a non-blocking connect to dstIp:dstPort. Returns the fd at once; the outcome arrives as a
   * 'connected' event (with the filter replaced by drop-everything) or a 'failed' event. The caller owns
   * timeouts: to abandon a dial it calls close(fd).
   */
  connect(srcIp: string, dstIp: string, dstPort: number): number;
  /**
   * Closes a socket without the kernel sending anything (enters TCP_REPAIR first, so no FIN or RST).
   * Works for listening, connecting and established sockets. Unknown fds are ignored. Idempotent.
   * Events about the socket that are still queued are dropped (for a listener: with its unreported
   * accepted sockets, which are closed silently).
   */
  close(fd: number): void;
  /**
   * Closes every socket the watcher owns (silently) and stops its thread. Until then the watcher keeps
   * the process alive only while it has a listener, a dial in progress or an undelivered event.
   */
  stop(): void;
}

export interface Mac {
  /**
   * SipHash-2-4 over many ranges in one call. For each i < count: computes the 8-byte tag of
   * data[meta[3i] .. meta[3i]+meta[3i+1]) with the 16-byte key, and writes it at data[meta[3i+2]].
   */
  sign(key: Buffer, data: Buffer, meta: Uint32Array, count: number): void;
  /**
   * Same ranges as sign(); compares with the tag stored at data[meta[3i+2]] in constant time and writes
   * 1 (valid) or 0 into ok[i].
   */
  verify(key: Buffer, data: Buffer, meta: Uint32Array, count: number, ok: Uint8Array): void;
}

export interface NativeAddon {
  Capture: new (opts: CaptureOptions, onBatch: CaptureBatchFn, onError: (err: Error) => void) => Capture;
  /** Opens a libnet raw IPv4 injector. Throws a clear Error without CAP_NET_RAW. */
  Injector: new () => Injector;
  SocketWatcher: new (onEvent: (ev: WatcherEvent) => void) => SocketWatcher;
  mac: Mac;
  /** libpcap and libnet version strings, for --version and logs. */
  versions(): { pcap: string; libnet: string; sodium: string };
}

let cached: NativeAddon | undefined;

/** Loads the addon once. Throws an Error that says how to build it when it is missing. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'rsock_native.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    cached = require(file) as NativeAddon;
  } catch (e) {
    throw new Error(`cannot load the native addon (${file}): ${(e as Error).message}. Run "npm run build:native".`);
  }
  return cached;
}
