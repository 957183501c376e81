// A tunnel connection as both sides see it: the kernel socket that owns the 4-tuple, and the fake TCP
// that took over from the kernel after the handshake.
import { FakeTcp } from './fake-tcp';
import { HEADER } from './frame';

/** What a finished kernel handshake tells us (IPs as u32 in host order). */
export interface Handshake {
  fd: number;
  localIp: number;
  localPort: number;
  remoteIp: number;
  remotePort: number;
  /** Own ISN+1 and peer ISN+1, as the kernel left them. */
  sndNxt: number;
  rcvNxt: number;
  /** The MSS the kernel would send with. */
  mss: number;
}

export interface Link {
  /** The kernel socket; closing it silently is the last step of a link's life. */
  readonly fd: number;
  readonly tcp: FakeTcp;
  /** Largest datagram one segment of this connection carries. */
  readonly maxDatagram: number;
}

export function linkFromHandshake(hs: Handshake, now: number): Link {
  const tcp = new FakeTcp({
    local: { ip: hs.localIp >>> 0, port: hs.localPort },
    remote: { ip: hs.remoteIp >>> 0, port: hs.remotePort },
    sndNxt: hs.sndNxt,
    rcvNxt: hs.rcvNxt,
    now,
  });
  return { fd: hs.fd, tcp, maxDatagram: Math.max(hs.mss - HEADER, 0) };
}
