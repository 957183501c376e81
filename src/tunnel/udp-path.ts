// The UDP transport both programs share (--type=udp|all): its own batched UDP sockets, the paths' keys,
// the send batch, and the receive path: counters unmasked, replays dropped before any crypto, headers
// unmasked and frames opened in one call each per batch, then the link control a fake TCP connection
// has too (Ping answered by Pong, Close, Fragment reassembly). What does not open is dropped silently.
import { CRYPTO, CRYPTO_STRIDE, FRAME_HEADER, type Crypto } from '../core/crypto';
import { FrameType, WireMode } from '../core/frame';
import { KeyTable } from '../core/key-table';
import { connectionKeys, DirectionKeys } from '../core/keys';
import type { UdpLink } from '../core/udp-link';
import { counterOffset, readCounter, udpFrameStart, udpPayloadLength } from '../core/udp-wire';
import { UDP_RX, UDP_RX_STRIDE } from '../io/records';
import { Datagrams } from './datagrams';
import type { TunnelIo, UdpMux } from './io';
import { UdpPathTx } from './udp-path-tx';

export interface UdpPathHandler<L extends UdpLink> {
  /** The path a datagram from ip:port on socket `sock` belongs to. */
  linkFor(sock: number, ip: number, port: number): L | undefined;
  /**
   * A datagram of no keyed path: a greeting (server), the server's answer (client), or a stranger's
   * bytes, which must get no answer. `link` is the path when one exists without keys yet.
   */
  onHandshake(sock: number, ip: number, port: number, link: L | undefined, buf: Buffer, off: number, len: number, now: number): void;
  /** A datagram of a keyed path, before it is parsed: true when it is a handshake message again (handled). */
  onRepeat(link: L, buf: Buffer, off: number, len: number, now: number): boolean;
  /** A verified frame other than the link control's own. */
  onFrame(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void;
  /** The peer said Close on this path. */
  onClosed(link: L, now: number): void;
}

export interface UdpPathStats {
  packets: number;
  frames: number;
  forged: number;
  replayed: number;
  malformed: number;
}

export class UdpTransport<L extends UdpLink> {
  readonly stats: UdpPathStats = { packets: 0, frames: 0, forged: 0, replayed: 0, malformed: 0 };
  private mux: UdpMux | null = null;
  private readonly keys = new KeyTable();
  readonly tx: UdpPathTx;
  private readonly datagrams = new Datagrams<L>();
  private readonly start: number;
  // Scratch space for one receive batch, reused.
  private rxLinks: L[] = [];
  private rxLen = new Uint32Array(256);
  private rxMeta = new Uint32Array(256 * CRYPTO_STRIDE);
  private rxType = new Uint8Array(256);
  private rxArg = new Uint32Array(256);
  private rxCounter = new Float64Array(256);
  private ok = new Uint8Array(256);

  constructor(
    private readonly io: TunnelIo,
    private readonly mode: WireMode,
    private readonly side: 'client' | 'server',
    private readonly master: Buffer,
    private readonly handler: UdpPathHandler<L>,
  ) {
    this.tx = new UdpPathTx(() => this.mux!, io.crypto, this.keys, mode, io.timers);
    this.start = udpFrameStart(mode);
  }

  open(): void {
    this.mux = this.io.openUdp((data, meta, count) => this.receive(data, meta, count, this.io.clock()));
  }

  get sockets(): UdpMux {
    return this.mux!;
  }

  /** The connection's keys from both nonces, as on fake TCP, plus the counter's mask keys. */
  installKeys(link: L, clientNonce: Buffer, serverNonce: Buffer): void {
    const k = connectionKeys(this.io.crypto, this.master, clientNonce, serverNonce);
    const client = this.side === 'client';
    const slot = (d: DirectionKeys): number => {
      const i = this.keys.allocate();
      this.keys.write(i, d.mask, d.mac, d.aead);
      return i;
    };
    const txk = client ? k.clientToServer : k.serverToClient;
    const rxk = client ? k.serverToClient : k.clientToServer;
    link.wire.txSlot = slot(txk);
    link.wire.rxSlot = slot(rxk);
    link.path.txCounterKey = txk.counter;
    link.path.rxCounterKey = rxk.counter;
    this.datagrams.add(link);
  }

  /** Forgets a path's keys (after what is queued for it went out). Its socket is the caller's. */
  forget(link: L): void {
    this.tx.flush();
    if (link.wire.txSlot >= 0) this.keys.free(link.wire.txSlot);
    if (link.wire.rxSlot >= 0) this.keys.free(link.wire.rxSlot);
    link.wire.txSlot = link.wire.rxSlot = -1;
    link.path.txCounterKey = link.path.rxCounterKey = null;
    link.path.open = false;
  }

  /** One datagram of a flow: one Data frame, or Fragment frames in consecutive datagrams of this path. */
  sendDatagram(link: L, flowId: number, src: Buffer, off: number, len: number, now: number): boolean {
    return this.datagrams.send(this.tx, link, flowId, src, off, len, now);
  }

  private grow(n: number): void {
    if (n <= this.rxLen.length) return;
    const size = Math.max(n, this.rxLen.length * 2);
    this.rxLen = new Uint32Array(size);
    this.rxMeta = new Uint32Array(size * CRYPTO_STRIDE);
    this.rxType = new Uint8Array(size);
    this.rxArg = new Uint32Array(size);
    this.rxCounter = new Float64Array(size);
    this.ok = new Uint8Array(size);
  }

  private receive(data: Buffer, meta: Uint32Array, count: number, now: number): void {
    const crypto: Crypto = this.io.crypto;
    this.grow(count);
    this.stats.packets += count;
    let k = 0;
    for (let i = 0; i < count; i++) {
      const m = i * UDP_RX_STRIDE;
      const sock = meta[m + UDP_RX.SOCKET];
      const off = meta[m + UDP_RX.OFFSET];
      const len = meta[m + UDP_RX.LENGTH];
      const ip = meta[m + UDP_RX.SRC_IP] >>> 0;
      const port = meta[m + UDP_RX.SRC_PORT];
      const link = this.handler.linkFor(sock, ip, port);
      if (!link || link.wire.rxSlot < 0 || !link.path.rxCounterKey) {
        this.handler.onHandshake(sock, ip, port, link, data, off, len, now);
        continue;
      }
      if (this.handler.onRepeat(link, data, off, len, now)) continue;
      const plen = udpPayloadLength(this.mode, data, off, len);
      if (plen < 0) {
        this.stats.malformed++;
        continue;
      }
      const frameOff = off + this.start;
      const counter = readCounter(crypto, link.path.rxCounterKey, data, frameOff, off + len - 8);
      // A counter out of range or seen before costs no more crypto.
      if (counter < 0 || !link.wire.replay.fresh(counterOffset(counter))) {
        if (counter < 0) this.stats.forged++;
        else this.stats.replayed++;
        continue;
      }
      this.rxLinks[k] = link;
      this.rxLen[k] = plen;
      this.rxCounter[k] = counter;
      const c = k * CRYPTO_STRIDE;
      this.rxMeta[c + CRYPTO.KEY] = link.wire.rxSlot;
      this.rxMeta[c + CRYPTO.OFFSET] = frameOff;
      this.rxMeta[c + CRYPTO.LENGTH] = plen;
      this.rxMeta[c + CRYPTO.NONCE_LO] = counter >>> 0;
      this.rxMeta[c + CRYPTO.NONCE_HI] = Math.floor(counter / 4294967296);
      k++;
    }
    if (k > 0) this.openAll(data, k, now);
    this.rxLinks.length = 0;
  }

  private openAll(data: Buffer, k: number, now: number): void {
    const crypto = this.io.crypto;
    crypto.unmaskHeaders(this.keys.buffer, data, this.rxMeta, k);
    // Frames whose header disagrees with the datagram's length are dropped; the rest are packed to the front.
    let g = 0;
    for (let i = 0; i < k; i++) {
      const c = i * CRYPTO_STRIDE;
      const off = this.rxMeta[c + CRYPTO.OFFSET];
      if (data.readUInt16BE(off) !== this.rxLen[i]) {
        this.stats.malformed++;
        continue;
      }
      this.rxType[g] = data[off + 2];
      this.rxArg[g] = data.readUInt32BE(off + 3);
      this.rxLinks[g] = this.rxLinks[i];
      this.rxCounter[g] = this.rxCounter[i];
      if (g !== i) this.rxMeta.copyWithin(g * CRYPTO_STRIDE, c, c + CRYPTO_STRIDE);
      g++;
    }
    if (g === 0) return;
    crypto.open(this.keys.buffer, data, this.rxMeta, g, this.mode.aead, this.ok);
    for (let f = 0; f < g; f++) {
      const link = this.rxLinks[f];
      if (!this.ok[f]) {
        this.stats.forged++;
        continue;
      }
      // A path closed by an earlier frame of this batch takes nothing more.
      if (link.wire.rxSlot < 0) continue;
      const at = counterOffset(this.rxCounter[f]);
      if (!link.wire.replay.fresh(at)) {
        this.stats.replayed++;
        continue;
      }
      link.wire.replay.accept(at);
      link.path.lastRecvAt = now;
      this.stats.frames++;
      const c = f * CRYPTO_STRIDE;
      this.control(link, this.rxType[f], this.rxArg[f], data, this.rxMeta[c + CRYPTO.OFFSET] + FRAME_HEADER, this.rxMeta[c + CRYPTO.LENGTH], now);
    }
  }

  private control(link: L, type: number, arg: number, buf: Buffer, off: number, len: number, now: number): void {
    switch (type) {
      case FrameType.Ping:
        this.tx.frame(link, FrameType.Pong, arg, null, 0, 0, now);
        return;
      case FrameType.Pong:
      case FrameType.Padding:
        return;
      case FrameType.Close:
        this.handler.onClosed(link, now);
        return;
      case FrameType.Fragment: {
        const whole = this.datagrams.fragment(link, arg, buf, off, len, now);
        if (whole) this.handler.onFrame(link, FrameType.Data, arg, whole, 0, whole.length, now);
        return;
      }
      default:
        this.handler.onFrame(link, type, arg, buf, off, len, now);
    }
  }

  /** Drops incomplete reassemblies that timed out. */
  tick(now: number): void {
    this.datagrams.reassembly.sweep(now);
  }

  counters(): Record<string, number> {
    const s = this.stats;
    return {
      udpPathPackets: s.packets,
      udpPathFrames: s.frames,
      udpPathForged: s.forged,
      udpPathReplayed: s.replayed,
      udpPathMalformed: s.malformed,
      udpPathSent: this.tx.sent,
      udpPathSendErrors: this.tx.failed,
      udpPathReassembled: this.datagrams.reassembly.stats.completed,
    };
  }

  stop(): void {
    try {
      this.tx.flush();
    } catch {
      // The sockets close anyway; a last Close that did not go out is what a lost datagram would be.
    }
    this.mux?.stop();
    this.mux = null;
  }
}
