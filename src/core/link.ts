// A tunnel connection as both sides see it: the kernel socket that owns the 4-tuple, the fake TCP
// that took over from the kernel after the handshake, and the connection's keys once its own
// handshake (docs/PROTOCOL.md §3) derived them.
import { parseIp } from './addr';
import { Endpoint, FakeTcp } from './fake-tcp';
import { frameOverhead, WireMode } from './frame';
import { ReplayWindow } from './replay';

/** Datagrams a connection or a flow carried, for status: sent on it (or to its app) and received. */
export interface Counted {
  sent: number;
  received: number;
}

/** What a finished kernel handshake tells us (IPv4 as u32 in host order; IPv6 as text). */
export interface Handshake {
  fd: number;
  /** 6: the addresses are IPv6, in localAddr and remoteAddr (localIp and remoteIp are 0). */
  ipVersion?: 4 | 6;
  localIp: number;
  localPort: number;
  remoteIp: number;
  remotePort: number;
  localAddr?: string;
  remoteAddr?: string;
  /** Own ISN+1 and peer ISN+1, as the kernel left them. */
  sndNxt: number;
  rcvNxt: number;
  /** The MSS the kernel would send with. */
  mss: number;
  rcvWscale: number;
  /** Timestamps negotiated, and the kernel's TSval clock for this socket at the event. */
  tsOk: boolean;
  tsVal: number;
  ttl: number;
  /** The kernel's receive window in bytes. */
  rcvWnd: number;
}

export interface LinkWire {
  /** Key-table slots sealing our frames and opening the peer's; -1 until the handshake derived them. */
  txSlot: number;
  rxSlot: number;
  /** Offset in the peer's stream where its frames begin; the bytes before are its handshake message. */
  rxFrom: number;
  readonly replay: ReplayWindow;
}

/** What the life cycles (ClientPool, ServerSessions) read of a link's transport, fake TCP or UDP. */
export interface PathState {
  readonly open: boolean;
  /** When the last valid frame (or handshake message) of the peer arrived. */
  readonly lastRecvAt: number;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  abort(reason: string): void;
}

/** A path frames travel on: a fake TCP connection (Link) or a UDP path (src/tunnel/udp-link.ts). */
export interface Carrier {
  /** The socket: the kernel TCP socket of a Link; a UDP path's transport socket id. */
  readonly fd: number;
  readonly path: PathState;
  /** Largest datagram one segment (one UDP datagram) of this path carries in one Data frame. */
  readonly maxDatagram: number;
  readonly wire: LinkWire;
}

export interface Link extends Carrier {
  /** Closing the kernel socket silently is the last step of a link's life. */
  readonly tcp: FakeTcp;
  /** The same object as tcp. */
  readonly path: FakeTcp;
}

/** What the capture saw of the handshake, a random start for the IP id counter and, for IPv6, a random flow label. */
export interface HandshakeExtras {
  tsRecent?: number;
  ipId: number;
  flowLabel?: number;
}

export function linkFromHandshake(hs: Handshake, mode: WireMode, extras: HandshakeExtras, now: number): Link {
  const tcp = new FakeTcp({
    local: { ...handshakeEndpoint(hs.ipVersion, hs.localIp, hs.localAddr, hs.localPort), flowLabel: (extras.flowLabel ?? 0) & 0xfffff },
    remote: handshakeEndpoint(hs.ipVersion, hs.remoteIp, hs.remoteAddr, hs.remotePort),
    sndNxt: hs.sndNxt,
    rcvNxt: hs.rcvNxt,
    now,
    tsOk: hs.tsOk,
    tsVal: hs.tsVal,
    tsRecent: extras.tsRecent,
    rcvWnd: hs.rcvWnd,
    rcvWscale: hs.rcvWscale,
    ttl: hs.ttl,
    ipId: extras.ipId,
  });
  return {
    fd: hs.fd,
    tcp,
    path: tcp,
    maxDatagram: Math.max(hs.mss - frameOverhead(mode), 0),
    wire: { txSlot: -1, rxSlot: -1, rxFrom: 0, replay: new ReplayWindow() },
  };
}

function handshakeEndpoint(version: 4 | 6 | undefined, ip: number, text: string | undefined, port: number): Endpoint {
  if (version !== 6) return { ip: ip >>> 0, port, ip6: null };
  const a = text === undefined ? null : parseIp(text);
  if (!a) throw new Error(`the kernel reported an IPv6 connection with the address "${text}"`);
  return { ip: a.key, port, ip6: a.ip6 };
}
