// The tunnel's I/O on the C++ addon and Node's own event loop: the production TunnelIo.
import { ipToInt } from '../core/ipv4';
import { portFilter } from '../core/ports';
import type { CaptureSpec, PacketBatchFn, Timers, TunnelIo } from '../tunnel/io';
import { monotonic } from '../util/clock';
import { captureSnaplen } from '../util/route';
import { loadNative, NativeAddon, UdpBatchFn, WatcherEvent } from './native';

/** Kernel capture ring: a few thousand MTU-sized slots (see captureSnaplen). */
const CAPTURE_BUFFER_BYTES = 2 << 20;

export const nodeTimers: Timers = {
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
  soon(fn) {
    setImmediate(fn);
  },
};

/** The libpcap expression for a CaptureSpec. */
export function captureFilter(spec: CaptureSpec): string {
  let f = `tcp and ${portFilter(spec.ports, spec.portSide)}`;
  if (spec.fromHost) f += ` and src host ${spec.fromHost}`;
  if (spec.toHost && spec.toHost !== '0.0.0.0') f += ` and dst host ${spec.toHost}`;
  return f;
}

export function nativeIo(addon: NativeAddon = loadNative()): TunnelIo {
  return {
    clock: monotonic,
    timers: nodeTimers,
    mac: addon.mac,
    openCapture(spec: CaptureSpec, onBatch: PacketBatchFn, onError: (err: Error) => void) {
      const opts = {
        device: spec.device,
        filter: captureFilter(spec),
        inboundOnly: true,
        snaplen: captureSnaplen(spec.device),
        bufferBytes: CAPTURE_BUFFER_BYTES,
      };
      return new addon.Capture(opts, onBatch, onError);
    },
    openInjector: () => new addon.Injector(),
    // TEMPORARY until the watcher hands IPs as u32: convert the dotted strings it gives today.
    openSockets: (onEvent: (ev: WatcherEvent) => void) =>
      new addon.SocketWatcher((ev) => {
        const e = ev as unknown as Record<string, unknown>;
        if (typeof e.localIp === 'string') e.localIp = ipToInt(e.localIp);
        if (typeof e.remoteIp === 'string') e.remoteIp = ipToInt(e.remoteIp);
        onEvent(ev);
      }),
    openUdp: (onBatch: UdpBatchFn) => new addon.UdpMux(onBatch),
  };
}
