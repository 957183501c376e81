// What the addon's SocketWatcher reports about the kernel TCP sockets whose handshakes rsock borrows.

/** What a kernel TCP socket's handshake produced; everything the fake-TCP connection needs to take over. */
export interface HandshakeInfo {
  fd: number;
  /**
   * 6 for an IPv6 connection, 4 for IPv4 (an IPv4 peer of a dual-stack listener included: its
   * ::ffff:a.b.c.d address is reported as the IPv4 address it is, since its packets are IPv4).
   */
  ipVersion: 4 | 6;
  /**
   * IPv4 addresses in host byte order (a.b.c.d => (a<<24|b<<16|c<<8|d) >>> 0), like the IPs of every
   * other record (TX, UDP_RX); 0 for IPv6. localAddr and remoteAddr are the text of either family.
   */
  localIp: number; localPort: number;
  remoteIp: number; remotePort: number;
  localAddr: string; remoteAddr: string;
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
  /**
   * The handshake negotiated TCP timestamps (tcpi_options & TCPI_OPT_TIMESTAMPS): both SYNs carried the
   * option, so a real kernel would put it on every later segment of this connection.
   */
  tsOk: boolean;
  /**
   * The TSval the kernel would put on a segment sent now (getsockopt TCP_TIMESTAMP): its ms clock plus
   * this connection's random offset. Rounded down to even by Linux (the low bit flags a µs clock).
   */
  tsVal: number;
  /**
   * The TTL the kernel sends this connection's segments with (getsockopt IP_TTL: net.ipv4.ip_default_ttl
   * unless set); for IPv6 the hop limit (IPV6_UNICAST_HOPS).
   */
  ttl: number;
  /** The kernel's receive window in bytes, unscaled (TCP_REPAIR_WINDOW rcv_wnd, read in repair mode). */
  rcvWnd: number;
}

export type WatcherEvent =
  | ({ type: 'accepted'; listenFd: number } & HandshakeInfo)
  | ({ type: 'connected' } & HandshakeInfo)
  | { type: 'failed'; fd: number; errno: number; error: string };
