// The server's view of its clients: connections that have not joined a session yet, sessions (one per
// client process, keyed by the client's random session id) with their connections and app flows, and
// the choice of the connection a reply goes back on. Pure: time comes in as `now`, and every side
// effect goes through the SessionDriver, like the client's ClientPool.
import { FlowTable, Flow } from './flow-table';
import { AllowedTarget, flowTarget, resolveForwards, SessionForwards } from './forwards';
import { CloseReason, Join, PROTOCOL_VERSION } from './frame';
import { Carrier, Counted, Link } from './link';

/** What the sessions keep per link, whatever carries it. */
export interface SessionState extends Counted {
  /** Null until a valid Join: such a link carries nothing. */
  session: Session | null;
  /** The client's slot number, from its Join. */
  slot: number;
  /** The client's greeting and our answer, kept until Join so that a retransmitted greeting gets the same answer. */
  greeting: { client: Buffer; answer: Buffer; answerSeq: number } | null;
  acceptedAt: number;
  deadAfterMs: number;
}

/** A link of a session: a fake TCP connection or a UDP path (the client runs either or both, --type). */
export type SessionCarrier = Carrier & SessionState;

export interface SessionLink extends Link, SessionState {}

export interface ServerFlow extends Flow, Counted {
  session: Session;
  /** The flow's own UDP socket towards the target; negative for a refused flow, which has none. */
  sock: number;
  /**
   * The connection the client last used for this flow. Replies go back on it: the client only sends
   * on connections it believes live, while this side may still hold ones a middlebox has reset.
   */
  link: SessionCarrier | null;
}

export interface Session {
  id: number;
  links: SessionCarrier[];
  rr: number;
  flows: Map<number, ServerFlow>;
  lastSeen: number;
  /** From the client's first Join with a forward table; null: every flow goes to --taddr. */
  forwards: SessionForwards | null;
}

export interface SessionOptions {
  /** A flow idle (both ways) this long is closed; a session with nothing left this long is forgotten. */
  durationMs: number;
  /** Keepalive assumed for a connection until its Join says the client's. */
  keepaliveMs: number;
  /** A connection that has not joined by then is closed: no state for strangers. */
  helloDeadlineMs: number;
  /** Flows visited per tick by the expiry sweep. */
  sweepBudget: number;
  /** Targets a client's forward may name besides --taddr (which is in the list too). */
  allowed: readonly AllowedTarget[];
}

export const DEFAULT_SESSION_OPTIONS: Omit<SessionOptions, 'durationMs' | 'keepaliveMs' | 'allowed'> = {
  helloDeadlineMs: 10000,
  sweepBudget: 500,
};

/** What an ending link tells the client: Close(reason) + FIN, a FIN alone, or nothing. */
export type Goodbye = CloseReason | 'fin' | 'none';

export interface SessionDriver {
  /** `answers`: allowed or refused per forward, when the client sent a table. */
  sendJoined(link: SessionCarrier, sessionId: number, answers: boolean[] | null): void;
  /** Gives the connection back to the kernel (a probe, not a client): it stops being ours at once. */
  handBack(link: SessionCarrier): void;
  /**
   * Ends a link for good: first says `goodbye` if the connection is still open (a Close frame with
   * that reason and a FIN, a FIN alone, or nothing), then forgets the link and closes its socket silently.
   */
  endLink(link: SessionCarrier, goodbye: Goodbye, reason: string): void;
  /** Opens the flow's UDP socket towards `target` (undefined: --taddr); returns its id (throws if it can't). */
  openFlow(session: Session, flowId: number, target: AllowedTarget | undefined): number;
  closeFlow(sock: number): void;
  /** For logs: what happened to whom. */
  onEvent(ev: SessionEvent): void;
}

export type SessionEvent =
  | { type: 'joined' | 'linkUp'; session: Session; link: SessionCarrier }
  | { type: 'linkDown'; session: Session; link: SessionCarrier; reason: string }
  | { type: 'left'; session: Session; reason: string }
  | { type: 'flowOpened' | 'flowExpired'; flow: ServerFlow }
  | { type: 'flowFailed'; session: Session; flowId: number; error: string }
  | { type: 'flowRefused'; flow: ServerFlow; why: string }
  | { type: 'badVersion'; version: number };

/** A Join's keepalive is clamped to this range before it sets the dead-link timer. */
const KEEPALIVE_RANGE = [200, 60000] as const;
const SESSION_SWEEP_MS = 1000;

export class ServerSessions {
  readonly links = new Set<SessionCarrier>();
  private readonly sessions = new Map<number, Session>();
  /** Every flow, by the id of its UDP socket: replies from the target are looked up by it. */
  readonly flows: FlowTable<number, ServerFlow>;
  private lastSessionSweep = 0;
  /** Refused flows are keyed in `flows` by negative numbers, which no socket id is. */
  private refusedKey = 0;

  constructor(private readonly opts: SessionOptions, private readonly driver: SessionDriver) {
    this.flows = new FlowTable(opts.durationMs);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }
  get flowCount(): number {
    return this.flows.size;
  }
  get linkCount(): number {
    return this.links.size;
  }
  session(id: number): Session | undefined {
    return this.sessions.get(id);
  }

  /** A kernel handshake finished on a listening port: the link waits for the client's greeting and Join. */
  accept<B extends Carrier>(base: B, now: number): B & SessionState {
    const link: B & SessionState = { ...base, session: null, slot: -1, greeting: null, acceptedAt: now, sent: 0, received: 0, deadAfterMs: deadAfter(this.opts.keepaliveMs) };
    this.links.add(link);
    return link;
  }

  /** The first payload was not a greeting: the connection is the kernel's again, and nothing of it stays here. */
  probe(link: SessionCarrier): void {
    if (link.session || !this.links.delete(link)) return;
    this.driver.handBack(link);
  }

  /**
   * A Join, under the connection's own keys: only a client that knows the key and our fresh nonce can
   * send one, so a replayed greeting never gets this far. `join` is null when its payload was too short.
   */
  join(link: SessionCarrier, sessionId: number, join: Join | null, now: number): void {
    if (!this.links.has(link)) return;
    if (!join || join.version !== PROTOCOL_VERSION) {
      this.driver.onEvent({ type: 'badVersion', version: join?.version ?? -1 });
      return;
    }
    // A link belongs to one session for life; a Join naming another is ignored.
    if (link.session && link.session.id !== sessionId) return;
    if (!link.session) {
      let s = this.sessions.get(sessionId);
      if (!s) {
        s = { id: sessionId, links: [], rr: 0, flows: new Map(), lastSeen: now, forwards: null };
        this.sessions.set(sessionId, s);
        this.driver.onEvent({ type: 'joined', session: s, link });
      }
      // The client redials a slot only after it gave up the old connection (reset, silence), which
      // this side may not have noticed: retire the old one now instead of sending replies into it.
      const old = s.links.find((l) => l.slot === join.slot);
      // Nothing is sent on it: the client has already closed that socket.
      if (old) this.end(old, 'none', `replaced by a new connection on port ${link.path.local.port}`, now);
      s.links.push(link);
      s.lastSeen = now;
      link.session = s;
      link.greeting = null;
      link.slot = join.slot;
      link.deadAfterMs = deadAfter(Math.min(Math.max(join.keepaliveMs, KEEPALIVE_RANGE[0]), KEEPALIVE_RANGE[1]));
      this.driver.onEvent({ type: 'linkUp', session: s, link });
    }
    // A client's table is fixed for its life: the first one stands, so flows never change target.
    const fw = (link.session.forwards ??= join.forwards ? resolveForwards(join.forwards, this.opts.allowed) : null);
    // Answered every time: the client resends Join until one Joined gets through.
    this.driver.sendJoined(link, sessionId, join.forwards && fw ? fw.targets.map((t) => t !== null) : null);
  }

  /** A Data frame: the flow its datagram goes to, opened on first sight; null for links without a session. */
  data(link: SessionCarrier, flowId: number, now: number): ServerFlow | null {
    const s = link.session;
    if (!s) return null;
    s.lastSeen = now;
    let flow = s.flows.get(flowId);
    if (!flow) {
      const target = flowTarget(s.forwards, flowId);
      let sock: number;
      if (typeof target === 'string') {
        sock = --this.refusedKey;
      } else {
        try {
          sock = this.driver.openFlow(s, flowId, target);
        } catch (e) {
          this.driver.onEvent({ type: 'flowFailed', session: s, flowId, error: (e as Error).message });
          return null;
        }
      }
      flow = { id: flowId, lastActive: now, session: s, sock, link: null, sent: 0, received: 0 };
      s.flows.set(flowId, flow);
      this.flows.set(sock, flow);
      // Logged once: the refused flow stays, silent, until it idles out like any other.
      this.driver.onEvent(typeof target === 'string' ? { type: 'flowRefused', flow, why: target } : { type: 'flowOpened', flow });
    }
    flow.lastActive = now;
    flow.link = link;
    return flow.sock < 0 ? null : flow;
  }

  /** A datagram from the target on socket `sock`: its flow and the link to send it on, or null. */
  reply(sock: number, now: number): { flow: ServerFlow; link: SessionCarrier | null } | null {
    const flow = this.flows.get(sock);
    if (!flow) return null;
    flow.lastActive = now;
    let link = flow.link;
    if (!link || !link.path.open || link.session !== flow.session) {
      const s = flow.session;
      const n = s.links.length;
      if (n === 0) return { flow, link: null };
      if (s.rr >= n) s.rr = 0;
      link = flow.link = s.links[s.rr++];
    }
    return { flow, link };
  }

  /** The client shut down (Bye): its links, flows and session go. */
  bye(link: SessionCarrier, sessionId: number, now: number): void {
    const s = link.session;
    if (s && s.id === sessionId) this.dropSession(s, 'the client shut down', now);
  }

  /** The connection is gone (reset, FIN, Close from the client): the link control already answered. */
  lost(link: SessionCarrier, reason: string, now: number): void {
    this.end(link, 'none', reason, now);
  }

  tick(now: number): void {
    for (const link of this.links) {
      if (!link.session) {
        // Closed like a server closes an idle connection; nothing was attached to it.
        if (now - link.acceptedAt >= this.opts.helloDeadlineMs) this.end(link, 'fin', 'no valid greeting and Join', now);
      } else if (now - link.path.lastRecvAt >= link.deadAfterMs) {
        this.end(link, CloseReason.Dead, `no traffic for ${Math.round((now - link.path.lastRecvAt) / 1000)} s`, now);
      }
    }
    this.flows.sweep(now, this.opts.sweepBudget, (_sock, flow) => {
      flow.session.flows.delete(flow.id);
      if (flow.sock >= 0) this.driver.closeFlow(flow.sock);
      this.driver.onEvent({ type: 'flowExpired', flow });
    });
    // Sessions with no connection and no flow left are forgotten; their client will join again.
    if (this.sessions.size > 0 && now - this.lastSessionSweep >= SESSION_SWEEP_MS) {
      this.lastSessionSweep = now;
      for (const s of this.sessions.values()) {
        if (s.links.length === 0 && s.flows.size === 0 && now - s.lastSeen >= this.opts.durationMs) this.sessions.delete(s.id);
      }
    }
  }

  /** Tells every client (Close + FIN on every open connection) and closes every socket. */
  stop(now: number): void {
    for (const link of [...this.links]) this.end(link, CloseReason.Shutdown, 'server shutting down', now);
    for (const flow of this.flows.values()) if (flow.sock >= 0) this.driver.closeFlow(flow.sock);
    this.flows.clear();
    this.sessions.clear();
  }

  private end(link: SessionCarrier, goodbye: Goodbye, reason: string, now: number): void {
    if (!this.links.delete(link)) return;
    this.driver.endLink(link, goodbye, reason);
    link.path.abort(reason);
    const s = link.session;
    if (s) {
      s.links = s.links.filter((l) => l !== link);
      s.lastSeen = now;
      this.driver.onEvent({ type: 'linkDown', session: s, link, reason });
    }
  }

  private dropSession(s: Session, reason: string, now: number): void {
    for (const link of [...s.links]) this.end(link, 'fin', reason, now);
    for (const flow of s.flows.values()) {
      this.flows.delete(flow.sock);
      if (flow.sock >= 0) this.driver.closeFlow(flow.sock);
    }
    s.flows.clear();
    this.sessions.delete(s.id);
    this.driver.onEvent({ type: 'left', session: s, reason });
  }
}

function deadAfter(keepaliveMs: number): number {
  return 3 * keepaliveMs + 500;
}

export function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** "session/flow", as logs name a flow. */
export function flowName(flow: ServerFlow): string {
  return `${hex(flow.session.id)}/${flow.id}`;
}
