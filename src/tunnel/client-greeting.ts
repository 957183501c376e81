// The client's side of a connection's opening (docs/PROTOCOL.md §3): the greeting, sent once the
// server's SYN-ACK TSval is known and retransmitted like a TCP segment until answered; the answer
// checked; then ChangeCipherSpec (tls) and Join, repeated until Joined.
import { FrameType, JOIN_LEN, PROTOCOL_VERSION, WireMode, writeJoin } from '../core/frame';
import { checkServerGreeting, clientGreeting } from '../core/greeting';
import type { Link } from '../core/link';
import { CCS_RECORD } from '../core/tls-record';
import type { Engine } from './engine';
import type { TunnelIo } from './io';

export interface Greeting {
  bytes: Buffer;
  nonce: Buffer;
  /** Where it went in our stream, and when; sentAt < 0: not sent yet. */
  seq: number;
  sentAt: number;
  rtoMs: number;
  since: number;
}

export interface GreetingLink extends Link {
  hello: Greeting;
  /** The client's slot number, which Join names. */
  readonly slotId: number;
}

/** Retransmitted like a TCP segment: after this, doubling (the kernel's minimum RTO is 200 ms). */
const GREETING_RTO_MS = 300;
/**
 * The capture delivers the server's SYN-ACK up to a few ms after the kernel reports the connection; the
 * greeting waits this long at most for its TSval, so that its TSecr echoes it as the kernel's ACK did.
 */
const TS_WAIT_MS = 20;
/** TLS 1.3 middlebox compatibility: the client's ChangeCipherSpec before its first encrypted record. */
const CHANGE_CIPHER_SPEC = Buffer.from(CCS_RECORD);

export interface GreeterConfig {
  mode: WireMode;
  sni: string;
  keepaliveMs: number;
  sessionId: number;
  /** Appended to Join: the client's --forward table (core/forwards.ts), or null for none. */
  forwardTable: Buffer | null;
}

export class ClientGreeter<L extends GreetingLink> {
  /** Links whose greeting waits for the capture to show the server's TSval. */
  private readonly waiting = new Set<L>();

  constructor(private readonly engine: Engine<L>, private readonly io: TunnelIo, private readonly cfg: GreeterConfig) {}

  /** A fresh greeting for a new connection; start() sends it. */
  create(now: number): Greeting {
    const g = clientGreeting(this.io.crypto, this.engine.keys, this.cfg.mode.obfs, this.cfg.sni);
    return { bytes: g.bytes, nonce: g.nonce, seq: 0, sentAt: -1, rtoMs: GREETING_RTO_MS, since: now };
  }

  /** Sends the greeting the first time, once the server's TSval is known or waiting has been long enough. */
  private start(link: L, now: number): void {
    const h = link.hello;
    if (h.sentAt >= 0) return;
    if (!link.tcp.tsKnown) {
      const ts = this.engine.handshakeTs(link);
      if (ts !== undefined) {
        link.tcp.tsRecent = ts;
        link.tcp.tsKnown = true;
      } else if (now - h.since < TS_WAIT_MS) {
        this.waiting.add(link);
        return;
      }
    }
    this.waiting.delete(link);
    h.seq = link.tcp.sndNxt;
    h.sentAt = now;
    this.engine.tx.raw(link.tcp, h.bytes, now);
  }

  /** No greeting waiting for a TSval. */
  get idle(): boolean {
    return this.waiting.size === 0;
  }

  /** Every engine tick: greetings that waited for a TSval. */
  tick(now: number, stillOpen: (link: L) => boolean): void {
    for (const link of this.waiting) {
      if (stillOpen(link)) this.start(link, now);
      else this.waiting.delete(link);
    }
  }

  /** Called every 100 ms until Joined: the first greeting, its retransmissions, or Join once keyed. */
  step(link: L, now: number): void {
    if (link.wire.txSlot >= 0) return this.sendJoin(link, now, false);
    const h = link.hello;
    if (h.sentAt < 0) return this.start(link, now);
    if (now - h.sentAt < h.rtoMs) return;
    h.sentAt = now;
    h.rtoMs *= 2;
    this.engine.tx.raw(link.tcp, h.bytes, now, h.seq);
  }

  /** The server's answer: its length when valid (the connection's keys are then installed), else why not. */
  answer(link: L, buf: Buffer, off: number, len: number): number | string {
    const r = checkServerGreeting(this.io.crypto, this.engine.keys, this.cfg.mode.obfs, link.hello.nonce, buf, off, len);
    if (!r.ok) return r.why;
    this.engine.installKeys(link, link.hello.nonce, r.nonce, r.consumed);
    return r.consumed;
  }

  /** Join, once the server's answer is in our ack; the first one after ChangeCipherSpec under tls. */
  sendJoin(link: L, now: number, first: boolean): void {
    const tx = this.engine.tx;
    const tls = this.cfg.mode.obfs === 'tls';
    if (first && tls) tx.raw(link.tcp, CHANGE_CIPHER_SPEC, now);
    const table = this.cfg.forwardTable;
    const off = tx.reserveFrame(link, FrameType.Join, this.cfg.sessionId, JOIN_LEN + (table?.length ?? 0), now, first && tls);
    writeJoin(tx.buffer, off, { version: PROTOCOL_VERSION, keepaliveMs: this.cfg.keepaliveMs, slot: link.slotId });
    table?.copy(tx.buffer, off + JOIN_LEN);
  }
}
