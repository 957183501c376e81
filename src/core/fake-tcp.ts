// The TCP half of a tunnel connection, after the kernel's handshake: what seq, ack and window each
// injected segment carries, when a pure ACK is due, and what an incoming RST or FIN means.
// Pure: it takes segments and times, and answers with values; the caller does the I/O.
import type { Ip6Words } from './addr';
import { ACK, FIN, PSH, RST, Segment, SYN } from './packet';
import type { OutSegment } from './out-segment';
import { OPT_TIMESTAMPS } from './out-segment';
import { seqAdd, seqDiff } from './seq';

export const enum TcpState {
  /** Handshake done by the kernels; we own the sequence space. */
  Established = 'ESTABLISHED',
  /** We sent a FIN and are waiting to be done (peer's FIN or a timeout). */
  FinWait = 'FIN_WAIT',
  /** The peer sent a FIN; we answered with ours. */
  CloseWait = 'CLOSE_WAIT',
  /** Reset by the peer or a middlebox, closed, or declared dead. Nothing more is sent. */
  Closed = 'CLOSED',
}

/** ip: the address's key (src/core/addr.ts); ip6: its words, for IPv6; flowLabel: the IPv6 label this end sends with. */
export type Endpoint = { ip: number; port: number; ip6?: Ip6Words | null; flowLabel?: number };

export interface FakeTcpInit {
  local: Endpoint;
  remote: Endpoint;
  /** Our next seq (own ISN+1) and the peer's (peer ISN+1), as the kernel left them after the handshake. */
  sndNxt: number;
  rcvNxt: number;
  now: number;
  /** Whether the handshake negotiated timestamps, and the TSval the kernel would have sent at `now`. */
  tsOk?: boolean;
  tsVal?: number;
  /** The peer's latest TSval, when the handshake's segments showed it. */
  tsRecent?: number;
  /** The kernel's receive window after the handshake, and the scales both sides negotiated. */
  rcvWnd?: number;
  rcvWscale?: number;
  /** IP fields the kernel would use: TTL, and where this connection's IP id counter starts. */
  ttl?: number;
  ipId?: number;
}

/** Pure-ACK cadence, from the conntrack measurements in FAKE-TCP-FACTS.md. */
export const ACK_EVERY_SEGMENTS = 32;
export const ACK_EVERY_BYTES = 64 * 1024;
export const ACK_DELAY_MS = 20;
/** How far from rcvNxt a data segment's seq may be and still count; farther is forged or stale. */
export const RECV_WINDOW = 16 * 1024 * 1024;
/** The largest window field. Scaled by the handshake's window scale it is what conntrack needs (FAKE-TCP-FACTS.md). */
export const WINDOW_FIELD = 0xffff;
/** Like a receive buffer autotuning up, the advertised window grows this much per segment sent until it is the largest. */
const WINDOW_GROWTH = 4;
/** At most one challenge ACK per connection this often (Linux: tcp_invalid_ratelimit). */
export const CHALLENGE_INTERVAL_MS = 500;

export type { OutSegment } from './out-segment';

export type SegmentVerdict =
  /** Carries payload at an acceptable seq: parse its frames; call acceptData() for the ones that verify. */
  | 'data'
  /** Nothing to do (pure ACK, duplicate, out of window). */
  | 'ignore'
  /** The connection was reset: state is now Closed. */
  | 'reset'
  /** The peer closed: state is now CloseWait; send finAck(). */
  | 'fin'
  /** An RST or FIN inside the window but not at the exact seq (RFC 5961): answer with a challenge ACK if challengeDue(). */
  | 'challenge';

export class FakeTcp {
  state: TcpState = TcpState.Established;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  sndNxt: number;
  /** Highest peer seq+len taken in: the ack we send. */
  rcvNxt: number;
  /** Highest ack the peer has sent us. */
  peerAck: number;
  private unackedSegs = 0;
  private unackedBytes = 0;
  private firstUnackedAt = 0;
  lastRecvAt: number;
  lastSendAt: number;
  closeReason = '';
  /** Stream offsets (64-bit, as doubles): of our next byte, and of rcvNxt in the peer's stream. */
  sndOff = 0;
  rcvOff = 0;
  private readonly tsOk: boolean;
  private readonly tsBase: number;
  private readonly tsStart: number;
  /** The peer's latest TSval from a segment we took in: our TSecr; tsKnown once one was seen. */
  tsRecent: number;
  tsKnown: boolean;
  private window: number;
  private readonly wscale: number;
  private readonly ttl: number;
  private ipId: number;
  private lastChallengeAt = -Infinity;

  constructor(init: FakeTcpInit) {
    this.local = init.local;
    this.remote = init.remote;
    this.sndNxt = init.sndNxt >>> 0;
    this.rcvNxt = init.rcvNxt >>> 0;
    this.peerAck = this.sndNxt;
    this.lastRecvAt = init.now;
    this.lastSendAt = init.now;
    this.tsOk = init.tsOk ?? false;
    this.tsBase = (init.tsVal ?? 0) >>> 0;
    this.tsStart = init.now;
    this.tsRecent = (init.tsRecent ?? 0) >>> 0;
    this.tsKnown = init.tsRecent !== undefined;
    this.wscale = init.rcvWscale ?? 0;
    this.window = Math.max(1, Math.min(WINDOW_FIELD, (init.rcvWnd ?? WINDOW_FIELD << this.wscale) >>> this.wscale));
    this.ttl = init.ttl ?? 64;
    this.ipId = (init.ipId ?? 0) & 0xffff;
  }

  /** The stream offset of a byte of the peer's at `seq` (near rcvNxt). */
  rcvOffsetOf(seq: number): number {
    return this.rcvOff + seqDiff(seq, this.rcvNxt);
  }

  /** Bytes the peer may send beyond rcvNxt, as our last window field told it. */
  get rcvWindowBytes(): number {
    return this.window * 2 ** this.wscale;
  }

  /** True when a challenge ACK may go out now; counts it. */
  challengeDue(now: number): boolean {
    if (now - this.lastChallengeAt < CHALLENGE_INTERVAL_MS) return false;
    this.lastChallengeAt = now;
    return true;
  }

  get open(): boolean { return this.state === TcpState.Established; }

  /** Classifies a segment of this 4-tuple. Only frames that open may move rcvNxt (acceptData): a forged
   * segment can never push our ack out of the window that conntrack tracks. */
  onSegment(seg: Segment, now: number): SegmentVerdict {
    if (this.state === TcpState.Closed) return 'ignore';
    const d = seqDiff(seg.seq, this.rcvNxt);
    if (seg.flags & SYN) {
      // The kernel handshake's SYN(-ACK), seen by the capture after the kernel reported the connection:
      // its TSval is what the kernel's last ACK echoed, so our first segment echoes it too.
      if (d === -1 && !this.tsKnown) this.noteTs(seg);
      return 'ignore';
    }
    if (seg.flags & RST) {
      // RFC 5961 §3: only the exact seq resets (a router's reset copies our ack into its seq); one in
      // the window draws a challenge ACK, which a real peer or middlebox answers with an exact RST.
      if (d === 0) {
        this.state = TcpState.Closed;
        this.closeReason = 'reset by peer or middlebox';
        return 'reset';
      }
      return d > 0 && d < this.rcvWindowBytes ? 'challenge' : 'ignore';
    }
    if (seg.wireLen > 0) {
      if (d < -RECV_WINDOW || d > RECV_WINDOW) return 'ignore';
      return 'data';
    }
    if (seg.flags & FIN) {
      // The peer's FIN follows its Close frame, so it lands exactly at rcvNxt; a blind one does not (RFC 5961 §4).
      if (d !== 0) return d > 0 && d < this.rcvWindowBytes ? 'challenge' : 'ignore';
      this.lastRecvAt = now;
      this.rcvNxt = seqAdd(seg.seq, 1);
      this.rcvOff += 1;
      this.noteTs(seg);
      this.noteUnacked(now, 0);
      if (this.state === TcpState.FinWait) {
        this.state = TcpState.Closed;
        this.closeReason = 'closed';
        return 'fin';
      }
      this.state = TcpState.CloseWait;
      this.closeReason = 'closed by peer';
      return 'fin';
    }
    if (seg.flags & ACK && d === 0 && seqDiff(seg.ack, this.peerAck) > 0 && seqDiff(seg.ack, this.sndNxt) <= 0) {
      this.peerAck = seg.ack;
      this.noteTs(seg);
    }
    return 'ignore';
  }

  private noteTs(seg: Segment): void {
    if (!seg.hasTs) return;
    this.tsRecent = seg.tsVal;
    this.tsKnown = true;
  }

  /** Records a segment whose frames verified: advances the ack and the ACK cadence counters. */
  acceptData(seg: Segment, now: number): void {
    this.lastRecvAt = now;
    const end = seqAdd(seg.seq, seg.wireLen);
    const ahead = seqDiff(end, this.rcvNxt);
    if (ahead > 0) {
      this.rcvNxt = end;
      this.rcvOff += ahead;
      this.noteTs(seg);
    }
    if (seg.flags & ACK && seqDiff(seg.ack, this.peerAck) > 0 && seqDiff(seg.ack, this.sndNxt) <= 0) this.peerAck = seg.ack;
    this.noteUnacked(now, seg.wireLen);
  }

  private noteUnacked(now: number, bytes: number): void {
    if (this.unackedSegs === 0) this.firstUnackedAt = now;
    this.unackedSegs++;
    this.unackedBytes += bytes;
  }

  /** The header fields for the next data segment of `len` payload bytes; it carries our latest ack, so it clears the ACK debt. */
  nextData(len: number, now: number, out: OutSegment): void {
    this.fill(out, this.sndNxt, ACK | PSH, now);
    this.sndNxt = seqAdd(this.sndNxt, len);
    this.sndOff += len;
    this.grow();
  }

  /** Appends `len` bytes to the data segment nextData() just described (several frames in one segment). */
  extend(len: number): void {
    this.sndNxt = seqAdd(this.sndNxt, len);
    this.sndOff += len;
  }

  /** A data segment at an earlier seq: a retransmission of bytes already counted (the handshake's first flight). */
  resend(seq: number, now: number, out: OutSegment): void {
    this.fill(out, seq, ACK | PSH, now);
  }

  /** A pure ACK with the current numbers. */
  pureAck(now: number, out: OutSegment): void {
    this.fill(out, this.sndNxt, ACK, now);
  }

  /** Our FIN (graceful close). Counts one sequence number, like a real FIN. */
  fin(now: number, out: OutSegment): void {
    this.fill(out, this.sndNxt, FIN | ACK, now);
    this.sndNxt = seqAdd(this.sndNxt, 1);
    this.sndOff += 1;
    if (this.state === TcpState.Established) this.state = TcpState.FinWait;
    else if (this.state === TcpState.CloseWait) {
      this.state = TcpState.Closed;
    }
  }

  /** What the kernel would put on a segment of this connection now: our ack and window, its TTL, timestamps and IP id. */
  private fill(out: OutSegment, seq: number, flags: number, now: number): void {
    out.seq = seq;
    out.ack = this.rcvNxt;
    out.flags = flags;
    // A receive buffer holding what has not been acknowledged yet advertises that much less.
    const unread = this.unackedBytes >>> this.wscale;
    out.window = Math.max(1, this.window - unread);
    out.options = this.tsOk ? OPT_TIMESTAMPS : 0;
    out.tsVal = this.tsVal(now);
    out.tsEcr = this.tsRecent;
    this.ipId = (this.ipId + 1) & 0xffff;
    out.ipId = this.ipId;
    out.ttl = this.ttl;
    this.clearAckDebt(now);
  }

  /** The kernel's timestamp clock for this socket (milliseconds), continued from the handshake. */
  tsVal(now: number): number {
    return (this.tsBase + Math.floor(now - this.tsStart)) >>> 0;
  }

  private grow(): void {
    if (this.window < WINDOW_FIELD) this.window = Math.min(WINDOW_FIELD, this.window * WINDOW_GROWTH);
  }

  private clearAckDebt(now: number): void {
    this.unackedSegs = 0;
    this.unackedBytes = 0;
    this.lastSendAt = now;
  }

  /** True when received data should be acknowledged now: many segments or bytes, or the oldest waited long enough. */
  ackDue(now: number): boolean {
    if (this.unackedSegs === 0 || this.state === TcpState.Closed) return false;
    return (
      this.unackedSegs >= ACK_EVERY_SEGMENTS ||
      this.unackedBytes >= ACK_EVERY_BYTES ||
      now - this.firstUnackedAt >= ACK_DELAY_MS
    );
  }

  /** Closed without a word on the wire (dead path, local decision). */
  abort(reason: string): void {
    if (this.state !== TcpState.Closed) {
      this.state = TcpState.Closed;
      this.closeReason = reason;
    }
  }
}
