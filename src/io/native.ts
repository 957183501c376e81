// Typed surface of the C++ addon (build/Release/rsock_native.node).
// The addon does raw I/O only: capture, inject, kernel-socket handshake help and batch crypto.
// It makes no protocol decisions; every seq, ack, flag and window comes from the TypeScript core.
//
// Records cross the boundary as Uint32Array words. Their layouts are defined once in C++
// (native/records.h), exported as `layouts`, and named for TypeScript in ./records.ts.
import * as path from 'path';

export * from './records';
export type { HandshakeInfo, WatcherEvent } from './handshake-info';
import type { WatcherEvent } from './handshake-info';
import type { KeySlotLayout, RecordLayout } from './records';
export type { Crypto } from '../core/crypto';
import type { Crypto } from '../core/crypto';

export interface CaptureOptions {
  /** Device name, or "any". */
  device: string;
  /**
   * libpcap filter expression: compiled by pcap_compile (optimised) for the bytes the socket sees (an
   * Ethernet frame, or the IP packet on a device without one, and on "any") and run by the kernel.
   */
  filter: string;
  /**
   * Bytes kept per packet, link header included on Ethernet-like devices (loopback too); must cover
   * GRO-merged segments. Default 65535.
   */
  snaplen?: number;
  /**
   * The socket's receive buffer (SO_RCVBUFFORCE, or SO_RCVBUF capped at net.core.rmem_max without
   * CAP_NET_ADMIN): how many bytes may wait in the kernel, each packet charged its buffer's true size
   * (about 2-4 KiB for an MTU-sized one). A cap, not memory taken up front. Default 32 MiB.
   */
  bufferBytes?: number;
  /**
   * Max packets per JS batch. Default 256. A batch also ends when the batch buffer (maxBatch x snaplen,
   * at most 1 MiB) could not take another snaplen, and whenever the socket is empty: a partial batch
   * is delivered at once, never held back.
   */
  maxBatch?: number;
  /** Capture only packets coming in to this host (PACKET_IGNORE_OUTGOING). Default true. */
  inboundOnly?: boolean;
  /**
   * Busy polling, in microseconds (0 to 10000; default 0, off): after every wake-up with input, the
   * event loop keeps polling, never sleeping, for this long, so that what comes within it is read
   * without a wake-up. It trades CPU (the loop spins while traffic flows) for latency.
   */
  busyPollUs?: number;
}

export interface CaptureStats {
  /** Packets delivered to JS. */ delivered: number;
  /** Batches delivered to JS. */ batches: number;
  /** PACKET_STATISTICS tp_drops: dropped by the kernel because the receive buffer was full. */ dropped: number;
  /** Receive drops the device itself counted since the capture opened (/proc/net/dev); 0 on "any". */ ifDropped: number;
  /** Packets skipped because the link header was unknown or the packet was neither IPv4 nor IPv6. */ skipped: number;
}

/**
 * Called with one batch, synchronously from the event loop when the capture socket has packets (no
 * thread involved; process.nextTick callbacks and microtasks queued here run right after it
 * returns, and an exception thrown here is an uncaught exception). `data` holds the IP packets (IPv4 or IPv6)
 * back to back, link header already stripped; `meta` holds CAPTURE_STRIDE words per packet (see
 * CAPTURE: offset, length), of which the first `count` records belong to this batch. A packet's length is its IP total length (IPv6: 40 + payload length; link padding removed), except
 * for a packet longer than snaplen: that one is delivered as captured, shorter than its IP total
 * length says.
 *
 * BORROWED, NOT OWNED: `data` and `meta` are the same two objects on every call, overwritten by the
 * next batch. They are valid only during the call; copy whatever must outlive it (a subarray is not
 * a copy). Their lengths are capacities: `data.length` is not the batch size and `meta.length` may
 * exceed `CAPTURE_STRIDE * count`. `this` is the Capture.
 */
export type CaptureBatchFn = (data: Buffer, meta: Uint32Array, count: number) => void;

export interface Capture {
  stats(): CaptureStats;
  /**
   * Stops polling and closes the packet socket. Idempotent; may be called from inside onBatch (no
   * further batch is delivered). An open capture keeps the process alive, like a socket; one whose
   * interface went away has reported it to onError and no longer does.
   */
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
   * Sends `count` IPv4+TCP or IPv6+TCP segments described by `meta` (TX_STRIDE words each, see TX) with the
   * payload bytes in `data`, with one sendmmsg per 64 segments. The addon writes the headers (DF set;
   * TTL, IP id and the timestamp option as the record says) with valid IP and TCP checksums; the
   * payload is handed to the kernel where it lies in `data`, without a copy of its own. Returns how
   * many were sent. Send errors on single packets are counted in stats(), not thrown; a malformed
   * record (a field out of range, unknown OPTIONS bits, a payload range outside `data`) throws a
   * RangeError before anything is sent.
   */
  send(data: Buffer, meta: Uint32Array, count: number): number;
  stats(): InjectorStats;
  close(): void;
}

/**
 * The kernel TCP sockets whose handshakes rsock borrows, served on the JS thread's own event loop (one
 * epoll instance watched by a libuv poll handle; no thread). Events are delivered one per onEvent call,
 * synchronously from the loop's poll phase (a 'failed' event for a dial that failed inside connect()
 * from a timer right after), like any I/O callback: process.nextTick callbacks and microtasks run right
 * after it, and an exception it throws is an uncaught exception. The callback may use the watcher
 * synchronously (listen, connect, close, stop); an event about a socket closed before its turn is
 * dropped, and after stop() no event is delivered.
 */
export interface SocketWatcher {
  /**
   * Creates a TCP listening socket on ip:port with SO_REUSEADDR and a
   * classic BPF socket filter that drops every segment carrying payload (so injected data never reaches
   * the kernel's TCP, while the handshake still works), then listen(). Accepted sockets are reported
   * as 'accepted' events after the watcher has learned their sequence numbers and replaced the filter
   * with one that drops everything. ip "" listens on IPv6 and IPv4 at once (:: with IPV6_V6ONLY off;
   * 0.0.0.0 on a kernel without IPv6), "0.0.0.0" and "::" on one family, any other address on itself.
   * Throws Error("listen 0.0.0.0:10001: Address already in use") etc.
   */
  listen(ip: string, port: number, backlog: number): number;
  /**
   * Creates a socket, attaches the payload-dropping filter, binds to srcIp ("" = kernel's choice) and
   * starts a non-blocking connect to dstIp:dstPort (IPv4 or IPv6 text; srcIp of the same version). Returns the fd at once; the outcome arrives as a
   * 'connected' event (with the filter replaced by drop-everything) or a 'failed' event. The caller owns
   * timeouts: to abandon a dial it calls close(fd).
   */
  connect(srcIp: string, dstIp: string, dstPort: number, srcPort?: number): number;
  /**
   * Closes a socket without the kernel sending anything (enters TCP_REPAIR first, so no FIN or RST).
   * Works for listening, connecting and established sockets. Unknown fds are ignored. Idempotent.
   * Events about the socket that are still queued are dropped. A listener's connections that were
   * not reported yet (still in the kernel's accept queue) are taken and closed silently too.
   */
  close(fd: number): void;
  /**
   * Gives an established connection ('accepted' or 'connected') back to the kernel: removes its socket
   * filter (SO_DETACH_FILTER) and forgets the fd without closing it; the caller owns the fd from here
   * on (e.g. `new net.Socket({ fd })`, or close it). The kernel then serves the connection as ordinary
   * TCP from where the handshake left it: the payload its filter dropped was never acknowledged, so the
   * peer retransmits it and the new owner reads it — unless injected segments have ACKed those bytes
   * meanwhile. Later close(fd) and stop() leave the socket alone. Throws an Error for an fd the
   * watcher does not own (never had, closed, already handed back) or one that is not established
   * (listening, dialling, failed), and after stop().
   */
  handBack(fd: number): void;
  /**
   * Closes every socket the watcher owns (silently) and stops polling; events not delivered yet are
   * dropped. Idempotent. Until then the watcher keeps the process alive only while it has a listener,
   * a dial in progress or an undelivered event. A listener that runs out of descriptors (EMFILE,
   * ENFILE, ENOBUFS, ENOMEM) is not polled for 100 ms, so that accepting does not spin.
   */
  stop(): void;
}

export interface UdpMuxOptions {
  /**
   * Max datagrams per JS batch. Default 256. A batch also ends when its buffer is full: the buffer
   * holds maxBatch x 2 KiB, at least 128 KiB (so the largest datagram always fits) and at most 4 MiB.
   */
  maxBatch?: number;
  /** SO_RCVBUF of every socket in bytes (SO_RCVBUFFORCE when permitted). Default 4 MiB. */
  rcvBuf?: number;
  /** SO_SNDBUF of every socket in bytes (SO_SNDBUFFORCE when permitted). Default 4 MiB. */
  sndBuf?: number;
  /** As CaptureOptions.busyPollUs. */
  busyPollUs?: number;
}

export interface UdpMuxStats {
  /** Datagrams delivered to JS. */ received: number;
  /** Batches delivered to JS (calls of onBatch). */ batches: number;
  /** Datagrams the kernel accepted in send(). */ sent: number;
  /** Of those, datagrams that left in UDP GSO groups (UDP_SEGMENT: equal sizes to one destination, one message each). */ coalesced: number;
  /** GSO groups the kernel refused (a route without checksum offload, or a segment above its MTU), sent again one by one. */ gsoRefused: number;
  /** Datagrams send() could not send: kernel errors (ENOBUFS, EAGAIN on a full send buffer, ECONNREFUSED, ...) and unknown or closed socket ids. */ sendErrors: number;
  /** Errors reading sockets, mostly ECONNREFUSED (ICMP port unreachable) on connected sockets. */ recvErrors: number;
  /** Text of the last send or receive error, or "". */ lastError: string;
  /** Open sockets. */ sockets: number;
}

/**
 * Called on the JS thread with one batch of received datagrams, straight from the event loop's poll
 * phase (like a socket's 'message' handler: process.nextTick callbacks and microtasks run right
 * after it; an exception it throws is an uncaught exception). `meta` holds UDP_RX_STRIDE words per
 * datagram (see UDP_RX), `count` records; the datagrams lie in `data` at the offsets given.
 *
 * Buffer ownership: `data` and `meta` are the same two objects on every call, allocated once per mux
 * and overwritten by the next batch. They are valid only during the call: the callee copies whatever
 * it keeps (bytes and numbers alike) before returning, and must not hold on to either array. Their
 * lengths are capacities (`meta` has room for maxBatch records), not the batch's size: use `count`.
 *
 * The callback may use the mux synchronously: send() (even straight from `data`), close(), bind(),
 * connect(), stop(). A socket closed during the call delivers nothing more, and an id reused during
 * the call never receives the old socket's datagrams; after stop() the call is the last one.
 */
export type UdpBatchFn = (data: Buffer, meta: Uint32Array, count: number) => void;

/**
 * Many UDP sockets served on the JS thread's own event loop: they share one epoll instance watched
 * by a single libuv poll handle, so a wake-up reads every ready socket with recvmmsg and hands JS
 * the datagrams in batches (one call per batch, no thread hop); sends go out with sendmmsg. Each
 * ready socket is read until it has no more or the batch is full; a socket that fills a batch waits
 * for the next loop turn, so one busy socket cannot starve the others or the loop. Batches are
 * flushed as soon as no ready socket has more to read, never held back. The mux does not keep the
 * process alive (like an unref'd socket).
 */
export interface UdpMux {
  /**
   * Binds a UDP socket to ip:port (IPv4 or IPv6 text; "" or "0.0.0.0" for any IPv4, "::" for any IPv6
   * and IPv4; port 0 = ephemeral); returns its id, a
   * small non-negative integer, never reused while open (the lowest free one is reused after close).
   * Throws Error("udp bind 127.0.0.1:30000: Address already in use") etc. `reusePort`: SO_REUSEPORT,
   * for worker threads that each bind the same endpoint (--workers).
   */
  bind(ip: string, port: number, reusePort?: boolean): number;
  /** Opens a UDP socket on an ephemeral port connected to ip:port. Returns its id. */
  connect(ip: string, port: number): number;
  /** Local port of a socket. Throws a RangeError for an id that is not open. */
  localPort(id: number): number;
  /**
   * Sends `count` datagrams described by `meta` (UDP_TX_STRIDE words each, see UDP_TX) from `data`,
   * with one sendmmsg per run of consecutive records for the same socket. Returns how many were sent.
   * Never blocks: a full send buffer drops the rest of the run. Errors on single datagrams and ids
   * that are not open are counted in stats(), not thrown; malformed records throw a RangeError
   * before anything is sent.
   */
  send(data: Buffer, meta: Uint32Array, count: number): number;
  /** Closes one socket; unknown ids are ignored. Datagrams it received that were not delivered yet are dropped. */
  close(id: number): void;
  stats(): UdpMuxStats;
  /** Closes every socket and stops polling; datagrams not delivered yet are dropped. Idempotent. */
  stop(): void;
}

export interface NativeAddon {
  /**
   * Opens a capture polled on this thread's event loop. Throws a clear Error (no such device, no
   * CAP_NET_RAW, bad filter). onError is called at most once, when the capture cannot go on (its
   * interface was deleted); it then stops. An interface that merely goes down and up again is
   * ridden out without a word.
   */
  Capture: new (opts: CaptureOptions, onBatch: CaptureBatchFn, onError: (err: Error) => void) => Capture;
  /**
   * Opens raw IPv4 and IPv6 sockets (IPPROTO_RAW) to inject on. Throws a clear Error without CAP_NET_RAW;
   * on a kernel without IPv6 only IPv6 segments fail (counted in stats()).
   */
  Injector: new () => Injector;
  SocketWatcher: new (onEvent: (ev: WatcherEvent) => void) => SocketWatcher;
  UdpMux: new (onBatch: UdpBatchFn, opts?: UdpMuxOptions) => UdpMux;
  /** Frame sealing and opening in batches, BLAKE2b and random bytes (libsodium); see src/core/crypto.ts. */
  crypto: Crypto;
  /**
   * The record layouts the C++ code uses (native/records.h); equal to the constants above. KEY_SLOT is
   * no record but the byte layout of a key-table slot (BYTES, then the byte offset of each key).
   */
  layouts: {
    CAPTURE: RecordLayout; TX: RecordLayout; UDP_RX: RecordLayout; UDP_TX: RecordLayout;
    CRYPTO: RecordLayout; KEY_SLOT: KeySlotLayout;
  };
  /** libpcap (the capture's filter compiler) and libsodium version strings, for --version and logs. */
  versions(): { pcap: string; sodium: string };
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
