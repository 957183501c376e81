// The TCP half of a tunnel connection, after the kernel's handshake: what seq, ack and window each
// injected segment carries, when a pure ACK is due, and what an incoming RST or FIN means.
// Pure: it takes segments and times, and answers with values; the caller does the I/O.
import { ACK, FIN, PSH, RST, Segment } from './packet';
import { seqAdd, seqDiff, seqMax } from './seq';

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

export interface Endpoint {
  ip: number;
  port: number;
}

export interface FakeTcpInit {
  local: Endpoint;
  remote: Endpoint;
  /** Our next seq (own ISN+1) and the peer's (peer ISN+1), as the kernel left them after the handshake. */
  sndNxt: number;
  rcvNxt: number;
  now: number;
}

/** Pure-ACK cadence, from the conntrack measurements in FAKE-TCP-FACTS.md. */
export const ACK_EVERY_SEGMENTS = 32;
export const ACK_EVERY_BYTES = 64 * 1024;
export const ACK_DELAY_MS = 20;
/**
 * How far ahead of rcvNxt a segment's seq may be and still count. The peer never has more than its
 * unacked bytes in flight; a wider distance is a forged or stale segment.
 */
export const RECV_WINDOW = 16 * 1024 * 1024;
/** RSTs and FINs are taken only this close to where we expect the peer's seq (RFC 5961 spirit). */
export const CONTROL_WINDOW = 1024 * 1024;

/** The window field we always advertise: the largest, scaled by whatever the handshake negotiated. */
export const WINDOW_FIELD = 0xffff;

export interface OutSegment {
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

export type SegmentVerdict =
  /** Carries payload at an acceptable seq: parse its frames; call acceptData() for the ones that verify. */
  | 'data'
  /** Nothing to do (pure ACK, duplicate, out of window). */
  | 'ignore'
  /** The connection was reset: state is now Closed. */
  | 'reset'
  /** The peer closed: state is now CloseWait; send finAck(). */
  | 'fin';

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

  constructor(init: FakeTcpInit) {
    this.local = init.local;
    this.remote = init.remote;
    this.sndNxt = init.sndNxt >>> 0;
    this.rcvNxt = init.rcvNxt >>> 0;
    this.peerAck = this.sndNxt;
    this.lastRecvAt = init.now;
    this.lastSendAt = init.now;
  }

  get open(): boolean {
    return this.state === TcpState.Established;
  }

  /**
   * Classifies an incoming segment of this 4-tuple. Data is not acknowledged here: only frames that
   * pass the MAC may move rcvNxt (acceptData), so a forged segment can never push our ack out of the
   * window that conntrack tracks.
   */
  onSegment(seg: Segment, now: number): SegmentVerdict {
    if (this.state === TcpState.Closed) return 'ignore';
    const d = seqDiff(seg.seq, this.rcvNxt);
    if (seg.flags & RST) {
      // A reset is believed when its seq is near what we expect (a router's reset copies our ack into its seq).
      if (d < -CONTROL_WINDOW || d > CONTROL_WINDOW) return 'ignore';
      this.state = TcpState.Closed;
      this.closeReason = 'reset by peer or middlebox';
      return 'reset';
    }
    if (seg.wireLen > 0) {
      if (d < -RECV_WINDOW || d > RECV_WINDOW) return 'ignore';
      return 'data';
    }
    if (seg.flags & FIN) {
      if (d < -CONTROL_WINDOW || d > CONTROL_WINDOW) return 'ignore';
      this.lastRecvAt = now;
      this.rcvNxt = seqAdd(seg.seq, 1);
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
    if (seg.flags & ACK && seqDiff(seg.ack, this.peerAck) > 0 && seqDiff(seg.ack, this.sndNxt) <= 0) this.peerAck = seg.ack;
    return 'ignore';
  }

  /** Records a segment whose frames verified: advances the ack and the ACK cadence counters. */
  acceptData(seg: Segment, now: number): void {
    this.lastRecvAt = now;
    this.rcvNxt = seqMax(this.rcvNxt, seqAdd(seg.seq, seg.wireLen));
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
    out.seq = this.sndNxt;
    out.ack = this.rcvNxt;
    out.flags = ACK | PSH;
    out.window = WINDOW_FIELD;
    this.sndNxt = seqAdd(this.sndNxt, len);
    this.clearAckDebt(now);
  }

  /** A pure ACK with the current numbers. */
  pureAck(now: number, out: OutSegment): void {
    out.seq = this.sndNxt;
    out.ack = this.rcvNxt;
    out.flags = ACK;
    out.window = WINDOW_FIELD;
    this.clearAckDebt(now);
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

  /** Our FIN (graceful close). Counts one sequence number, like a real FIN. */
  fin(now: number, out: OutSegment): void {
    out.seq = this.sndNxt;
    out.ack = this.rcvNxt;
    out.flags = FIN | ACK;
    out.window = WINDOW_FIELD;
    this.sndNxt = seqAdd(this.sndNxt, 1);
    this.clearAckDebt(now);
    if (this.state === TcpState.Established) this.state = TcpState.FinWait;
    else if (this.state === TcpState.CloseWait) {
      this.state = TcpState.Closed;
    }
  }

  /** Marks the connection closed without sending anything (dead path, local decision). */
  abort(reason: string): void {
    if (this.state !== TcpState.Closed) {
      this.state = TcpState.Closed;
      this.closeReason = reason;
    }
  }
}
