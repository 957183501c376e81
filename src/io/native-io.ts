// The tunnel's I/O on the C++ addon and Node's own event loop: the production TunnelIo.
import { portFilter } from '../core/ports';
import { DecoyTarget, ProbeServer } from '../tunnel/decoy';
import type { CaptureSpec, Timers, TunnelIo } from '../tunnel/io';
import { monotonic } from '../util/clock';
import { captureSnaplen } from '../util/route';
import { CaptureBatchFn, loadNative, NativeAddon, UdpBatchFn, WatcherEvent } from './native';

/**
 * Receive buffers of the capture socket and of every UDP socket: a cap on what may wait in the kernel
 * while the JS thread is busy or descheduled, not memory taken up front. The capture's figure is the
 * kernel's cap itself (the addon asks for half, which the kernel doubles); the UDP sockets' is their
 * SO_RCVBUF, so their cap is 64 MiB, as measured. Each queued MTU-sized packet is charged 2-4 KiB, so
 * 32 MiB holds ~10,000 of them: ~130 ms at 80,000 datagrams/s. With 4 MiB (~25 ms) the capture dropped 30,000-70,000 segments per rate search
 * on the benchmark's shared VM, and the rate at < 1 % loss was lower by a tenth to a fifth
 * (BENCHMARKS.md, cut 8).
 */
const CAPTURE_BUFFER_BYTES = 32 << 20;
const UDP_RCVBUF_BYTES = 32 << 20;

const nodeTimers: Timers = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  soon(fn) {
    setImmediate(fn);
  },
};

/** The libpcap expression for a CaptureSpec. */
export function captureFilter(spec: CaptureSpec): string {
  let f = `tcp and ${portFilter(spec.ports, spec.portSide)}`;
  if (spec.fromHost) f += ` and src host ${spec.fromHost}`;
  if (spec.toHost) f += ` and dst host ${spec.toHost}`;
  if (spec.localPorts) f += ` and dst portrange ${spec.localPorts[0]}-${spec.localPorts[1]}`;
  return f;
}

export interface NativeIoOptions {
  /** Where active probes are spliced to (--decoy); without it they are hung up on. */
  decoy?: DecoyTarget;
  /** --busy-poll: µs the event loop keeps polling after input on the capture and the UDP sockets; 0 or absent: off. */
  busyPollUs?: number;
}

export function nativeIo(opts: NativeIoOptions = {}, addon: NativeAddon = loadNative()): TunnelIo {
  const probes = new ProbeServer(opts.decoy);
  const busyPollUs = opts.busyPollUs ?? 0;
  return {
    clock: monotonic,
    timers: nodeTimers,
    crypto: addon.crypto,
    openCapture(spec: CaptureSpec, onBatch: CaptureBatchFn, onError: (err: Error) => void) {
      const opts = {
        device: spec.device,
        filter: captureFilter(spec),
        inboundOnly: true,
        snaplen: captureSnaplen(spec.device),
        bufferBytes: CAPTURE_BUFFER_BYTES,
        busyPollUs,
      };
      return new addon.Capture(opts, onBatch, onError);
    },
    openInjector: () => new addon.Injector(),
    openSockets: (onEvent: (ev: WatcherEvent) => void) => new addon.SocketWatcher(onEvent),
    openUdp: (onBatch: UdpBatchFn) => new addon.UdpMux(onBatch, { busyPollUs, rcvBuf: UDP_RCVBUF_BYTES }),
    serveProbe: (fd: number) => probes.serveProbe(fd),
  };
}
