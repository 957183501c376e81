// The client's connections: one slot per (port, index). Each slot dials, greets and joins, carries data while
// live, and redials with backoff after a reset, a FIN, silence or a failed dial, for as long as the
// process runs. Pure: time comes in as `now`, and every side effect goes through the PoolDriver.
import { Backoff } from './backoff';
import { Carrier } from './link';
import { LiveSet, NO_PARTITION, Partition } from './partition';

export const enum SlotState {
  /** Waiting for its next dial time. */
  Backoff = 'BACKOFF',
  /** Kernel handshake under way. */
  Dialing = 'DIALING',
  /** TCP is up; greeting sent, then Join once the server answered it, waiting for Joined. */
  Hello = 'HELLO',
  /** Carrying datagrams. */
  Live = 'LIVE',
  /** Pool stopped. */
  Stopped = 'STOPPED',
}

export interface PoolOptions {
  dialTimeoutMs: number;
  /** sendHello() is called at this interval until Joined, for at most helloTimeoutMs. */
  helloIntervalMs: number;
  helloTimeoutMs: number;
  keepaliveMs: number;
  /** No valid frame from the server for this long: the path is dead. */
  deadAfterMs: number;
  backoffFirstMs: number;
  backoffMaxMs: number;
  /** A connection that stayed live this long resets its slot's backoff. */
  stableAfterMs: number;
  /** While no connection is live, one slot in backoff is dialed this often anyway: the path or server being back shows within about this long. */
  probeEveryMs: number;
  /** How long such a probe dial may take (a fresh SYN soon beats the kernel's SYN retransmits at 1, 3, 7 s). */
  probeDialTimeoutMs: number;
  /** A live connection quiet this long is checked (probeQuiet) this often: a restarted server's host then says so before deadAfterMs. */
  quietProbeMs: number;
  random?: () => number;
}

/** A burst of resets checks each other connection at most this often. */
const RESET_PROBE_GAP_MS = 100;
export const DEFAULT_POOL_OPTIONS: PoolOptions = {
  dialTimeoutMs: 5000,
  helloIntervalMs: 100,
  helloTimeoutMs: 5000,
  keepaliveMs: 2000,
  deadAfterMs: 8000,
  backoffFirstMs: 200,
  backoffMaxMs: 10000,
  stableAfterMs: 10000,
  probeEveryMs: 1000,
  probeDialTimeoutMs: 1500,
  quietProbeMs: 1000,
};

export class Slot<L extends Carrier = Carrier> {
  state: SlotState = SlotState.Backoff;
  fd = -1;
  /** The connection, from the end of the kernel handshake until the slot goes down. */
  link: L | null = null;
  /** When the current state's deadline or next action falls due. */
  dueAt = 0;
  stateSince = 0;
  liveSince = 0;
  lastPingAt = 0;
  lastQuietProbeAt = 0;
  pingNonce = 0;
  /** Round trip of the last answered keepalive (Ping to its Pong), for status; null before one. */
  rttMs: number | null = null;
  /** Datagrams sent and received on this slot's connections, for status. */
  sent = 0;
  received = 0;
  /** How many times this slot has gone live; 1 is the first connection, more are reconnects. */
  ups = 0;
  /** The server class of its connection (partition.ts), out of `classes`, from its Joined. */
  cls = 0;
  classes = 1;
  readonly backoff: Backoff;

  constructor(readonly id: number, readonly port: number, opts: PoolOptions) {
    this.backoff = new Backoff({ firstMs: opts.backoffFirstMs, maxMs: opts.backoffMaxMs, jitter: 0.2, random: opts.random });
  }
}

/** Why a slot went down: a reset, FIN or Close from the peer, silence, a failed dial, or a handshake that did not finish. */
export type DownCause = 'reset' | 'fin' | 'close' | 'silence' | 'dial_failure' | 'handshake';

export interface PoolDriver<L extends Carrier = Carrier> {
  /** Starts a kernel dial to the slot's port; returns the socket handle, or throws if it can't even start. */
  dial(slot: Slot<L>): number;
  /** Closes a socket without the kernel sending anything; `link` is the connection it carried, if it got that far. */
  closeSocket(fd: number, link: L | null): void;
  sendHello(slot: Slot<L>): void;
  sendPing(slot: Slot<L>, nonce: number): void;
  /** Check that the server still has the connection, if the transport can: it has been quiet for quietProbeMs, or (`afterReset`) another connection was reset. */
  probeQuiet?(slot: Slot<L>, afterReset?: boolean): void;
  /** In-tunnel Close then FIN, before a local decision to drop a working connection. */
  sendClose(slot: Slot<L>): void;
  onUp(slot: Slot<L>, reconnect: boolean): void;
  /** `wasUp`: the slot was carrying traffic (LIVE) until now, as opposed to a failed attempt. */
  onDown(slot: Slot<L>, reason: string, retryInMs: number, wasUp: boolean, cause: DownCause): void;
}

export class ClientPool<L extends Carrier = Carrier> {
  readonly slots: Slot<L>[] = [];
  private readonly byFd = new Map<number, Slot<L>>();
  private readonly live = new LiveSet<Slot<L>>();
  private nextProbeAt = 0;
  private probeRr = 0;

  constructor(ports: number[], perPort: number, private readonly opts: PoolOptions, private readonly driver: PoolDriver<L>) {
    let id = 0;
    for (let i = 0; i < perPort; i++) for (const port of ports) this.slots.push(new Slot(id++, port, opts));
  }

  start(now: number): void {
    for (const s of this.slots) this.dial(s, now);
  }

  slotByFd(fd: number): Slot<L> | undefined {
    return this.byFd.get(fd);
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** How many server classes the latest Joined announced (1: a server without workers). */
  get classes(): number {
    return this.live.classes;
  }

  /** Round-robin over the live connections of flow `flowId`'s server class (partition.ts; all, with one class). */
  pick(flowId = 0): Slot<L> | undefined {
    return this.live.pick(flowId);
  }

  private dial(s: Slot<L>, now: number, timeoutMs = this.opts.dialTimeoutMs): void {
    this.setState(s, SlotState.Dialing, now);
    s.dueAt = now + timeoutMs;
    try {
      s.fd = this.driver.dial(s);
      this.byFd.set(s.fd, s);
    } catch (e) {
      s.fd = -1;
      this.down(s, now, `dial failed: ${(e as Error).message}`, 'dial_failure');
    }
  }

  /** The kernel handshake finished; `link` starts at the sequence numbers it left. */
  onConnected(fd: number, link: L, now: number): Slot<L> | undefined {
    const s = this.byFd.get(fd);
    if (!s || s.state !== SlotState.Dialing) return undefined;
    s.link = link;
    this.setState(s, SlotState.Hello, now);
    s.dueAt = now + this.opts.helloTimeoutMs;
    s.lastPingAt = now;
    this.driver.sendHello(s);
    return s;
  }

  onDialFailed(fd: number, error: string, now: number): void {
    const s = this.byFd.get(fd);
    if (!s || s.state !== SlotState.Dialing) return;
    this.down(s, now, `dial failed: ${error}`, 'dial_failure');
  }

  onJoined(s: Slot<L>, now: number, partition: Partition = NO_PARTITION): void {
    if (s.state !== SlotState.Hello) return;
    if (this.live.size === 0) this.redialSoon(now);
    this.setState(s, SlotState.Live, now);
    s.liveSince = now;
    s.lastPingAt = now;
    s.ups++;
    this.live.add(s, partition);
    this.driver.onUp(s, s.ups > 1);
  }

  /** The server's Pong: the keepalive's round trip, when it answers the latest Ping. */
  onPong(s: Slot<L>, nonce: number, now: number): void {
    if (nonce === s.pingNonce && s.state === SlotState.Live) s.rttMs = now - s.lastPingAt;
  }

  /** The TCP layer saw a reset or the peer's FIN, or the server said Close. */
  onLost(s: Slot<L>, now: number, reason: string, cause: 'reset' | 'fin' | 'close' | 'handshake'): void {
    // A server with another key or mode takes our greeting for a probe and closes or hands us to its decoy.
    if (s.state === SlotState.Hello) this.down(s, now, `${reason} during the handshake (a different --key, --obfs or --crypt on the server?)`, 'handshake');
    else if (s.state !== SlotState.Live) return;
    this.down(s, now, reason, cause);
    // One reset may be a restarted server: check the other connections now, not a second later each,
    // or the datagrams they carry meanwhile are lost. A live server's socket filter drops the checks.
    if (cause === 'reset') for (const o of this.slots) if (o.state === SlotState.Live && now - o.lastQuietProbeAt >= RESET_PROBE_GAP_MS) {
      o.lastQuietProbeAt = now;
      this.driver.probeQuiet?.(o, true);
    }
  }

  tick(now: number): void {
    if (this.live.size === 0 && now >= this.nextProbeAt) this.probe(now);
    for (const s of this.slots) {
      switch (s.state) {
        case SlotState.Backoff:
          if (now >= s.dueAt) this.dial(s, now);
          break;
        case SlotState.Dialing:
          if (now >= s.dueAt) this.down(s, now, `no answer from port ${s.port} within ${now - s.stateSince} ms`, 'dial_failure');
          break;
        case SlotState.Hello:
          if (now >= s.dueAt) this.down(s, now, 'the server did not answer the greeting (a different --key, --obfs or --crypt, or not an rsock server)', 'handshake');
          else if (now - s.lastPingAt >= this.opts.helloIntervalMs) {
            s.lastPingAt = now;
            this.driver.sendHello(s);
          }
          break;
        case SlotState.Live: {
          const conn = s.link!.path;
          if (now - conn.lastRecvAt >= this.opts.deadAfterMs) {
            this.driver.sendClose(s);
            this.down(s, now, `no reply for ${Math.round((now - conn.lastRecvAt) / 1000)} s`, 'silence');
          } else if (now - s.lastPingAt >= this.opts.keepaliveMs) {
            s.lastPingAt = now;
            s.pingNonce = (s.pingNonce + 1) >>> 0;
            this.driver.sendPing(s, s.pingNonce);
          } else if (now - conn.lastRecvAt >= this.opts.quietProbeMs && now - s.lastQuietProbeAt >= this.opts.quietProbeMs) {
            s.lastQuietProbeAt = now;
            this.driver.probeQuiet?.(s);
          }
          break;
        }
        default:
          break;
      }
    }
  }

  private down(s: Slot<L>, now: number, reason: string, cause: DownCause): void {
    const wasUp = s.state === SlotState.Live;
    if (wasUp) {
      this.live.remove(s);
      if (now - s.liveSince >= this.opts.stableAfterMs) s.backoff.reset();
    }
    if (s.fd >= 0) {
      this.byFd.delete(s.fd);
      this.driver.closeSocket(s.fd, s.link);
      s.fd = -1;
    }
    s.link?.path.abort(reason);
    s.link = null;
    const delay = s.backoff.next();
    this.setState(s, SlotState.Backoff, now);
    s.dueAt = now + delay;
    this.driver.onDown(s, reason, delay, wasUp, cause);
  }

  /** Nothing is live: dial the next slot that waits in backoff (round robin, so every port gets its turn). */
  private probe(now: number): void {
    this.nextProbeAt = now + this.opts.probeEveryMs;
    const n = this.slots.length;
    for (let i = 0; i < n; i++) {
      const s = this.slots[(this.probeRr + i) % n];
      if (s.state !== SlotState.Backoff || s.dueAt <= now) continue;
      this.probeRr = (this.probeRr + i + 1) % n;
      this.dial(s, now, this.opts.probeDialTimeoutMs);
      return;
    }
  }

  /** The first connection after an outage: the path is back, so the others need not wait out their backoff. */
  private redialSoon(now: number): void {
    const spread = this.opts.probeEveryMs / 2;
    for (const s of this.slots) {
      if (s.state !== SlotState.Backoff) continue;
      s.backoff.reset();
      s.dueAt = Math.min(s.dueAt, now + Math.round(spread * (this.opts.random ?? Math.random)()));
    }
  }

  /** Tells the server and closes every connection. */
  stop(now: number): void {
    for (const s of this.slots) {
      if (s.state === SlotState.Live || s.state === SlotState.Hello) this.driver.sendClose(s);
      if (s.fd >= 0) {
        this.byFd.delete(s.fd);
        this.driver.closeSocket(s.fd, s.link);
        s.fd = -1;
      }
      s.link?.path.abort('shutdown');
      s.link = null;
      this.setState(s, SlotState.Stopped, now);
    }
    this.live.clear();
  }

  private setState(s: Slot<L>, st: SlotState, now: number): void {
    s.state = st;
    s.stateSince = now;
  }
}
