// What the client's connection life cycle (the pure ClientPool) does to the world: dial through the
// kernel, greet, ping, close, and say in the log what happened to each connection.
import { ClientPool, DownCause, PoolDriver, Slot } from '../core/client-pool';
import { CloseReason, FrameType } from '../core/frame';
import { endpointText } from '../core/addr';
import { Logger } from '../util/log';
import { ClientGreeter, GreetingLink } from './client-greeting';
import { Engine } from './engine';
import { TunnelIo } from './io';
import type { ReconnectCause } from '../ops/status';

export interface ClientLink extends GreetingLink {
  slot: Slot<ClientLink>;
}

export interface DialerConfig {
  serverIp: string;
  /** Source address for the dials; "" lets the kernel choose. */
  localIp: string;
  keepaliveMs: number;
  /** One of several client workers: it dials from its own local ports, which its capture filter names. */
  worker?: { localPorts: [number, number] };
}

/** Tries at a random port of a worker's range before a dial counts as failed (the range is thousands wide). */
const PORT_TRIES = 16;

export class ClientDialer implements PoolDriver<ClientLink> {
  pool!: ClientPool<ClientLink>;
  greeter!: ClientGreeter<ClientLink>;
  /** The first dial that failed for want of a capability: retrying cannot help. */
  missingPrivilege: string | null = null;
  readonly reconnects: Record<ReconnectCause, number> = { reset: 0, fin: 0, close: 0, silence: 0, dial_failure: 0, handshake: 0 };

  constructor(
    private readonly engine: Engine<ClientLink>,
    private readonly io: TunnelIo,
    private readonly cfg: DialerConfig,
    private readonly log: Logger,
    private readonly onFirstUp: () => void,
  ) {}

  dial(slot: Slot<ClientLink>): number {
    try {
      const range = this.cfg.worker?.localPorts;
      return range ? this.dialFrom(range, slot.port) : this.engine.watcher.connect(this.cfg.localIp, this.cfg.serverIp, slot.port);
    } catch (e) {
      if (/not permitted/.test((e as Error).message)) this.missingPrivilege ??= (e as Error).message;
      throw e;
    }
  }

  /** A dial from a random free port of [lo, hi], as the kernel picks an ephemeral port, but in this worker's range. */
  private dialFrom([lo, hi]: [number, number], port: number): number {
    for (let i = 1; ; i++) {
      const src = lo + (this.io.crypto.randomU32() % (hi - lo + 1));
      try {
        return this.engine.watcher.connect(this.cfg.localIp, this.cfg.serverIp, port, src);
      } catch (e) {
        if (i >= PORT_TRIES || !/in use/i.test((e as Error).message)) throw e;
      }
    }
  }

  closeSocket(fd: number, link: ClientLink | null): void {
    if (link) this.engine.remove(link);
    else this.engine.watcher.close(fd);
  }

  /** Every connection carrying (none dialing, greeting or waiting to redial), no greeting waiting for a TSval. */
  settled(tcp: boolean): boolean {
    return this.greeter.idle && (!tcp || this.pool.liveCount === this.pool.slots.length);
  }

  /** Called every 100 ms until Joined. */
  sendHello(slot: Slot<ClientLink>): void {
    this.greeter.step(slot.link!, this.io.clock());
  }

  sendPing(slot: Slot<ClientLink>, nonce: number): void {
    this.engine.tx.frame(slot.link!, FrameType.Ping, nonce, null, 0, 0, this.io.clock());
  }

  /**
   * Quiet since we last sent: a pure ACK at our exact seq and ack. A live server's kernel socket drops
   * it (its filter), and so does rsock. A server that restarted has no socket for the 4-tuple, and its
   * kernel answers a payload-less segment with an RST at the seq we expect (data it drops silently,
   * through the listener's filter), so the slot redials within a round trip instead of deadAfterMs.
   */
  probeQuiet(slot: Slot<ClientLink>, afterReset = false): void {
    const tcp = slot.link!.tcp;
    if (afterReset || tcp.lastSendAt > tcp.lastRecvAt) this.engine.tx.pureAck(tcp, this.io.clock());
  }

  sendClose(slot: Slot<ClientLink>): void {
    if (slot.link) this.engine.sayClose(slot.link, CloseReason.Shutdown, this.io.clock());
  }

  onUp(slot: Slot<ClientLink>, reconnect: boolean): void {
    const t = slot.link?.tcp;
    const where = t ? endpointText(t.local) : '?';
    this.log.info(
      `connection ${slot.id} to port ${slot.port} up${reconnect ? ' again' : ''} (from ${where}); ${this.pool.liveCount}/${this.pool.slots.length} live`,
    );
    this.onFirstUp();
  }

  onDown(slot: Slot<ClientLink>, reason: string, retryInMs: number, wasUp: boolean, cause: DownCause): void {
    this.reconnects[cause]++;
    // Losing a live connection is always worth a line; repeated failed redials only now and then.
    this.log.rateLimited(
      'warn',
      `down${slot.id}`,
      wasUp || slot.backoff.failures <= 3 ? 0 : 30000,
      `connection ${slot.id} to port ${slot.port} down: ${reason}; retrying in ${(retryInMs / 1000).toFixed(1)} s; ${this.pool.liveCount}/${this.pool.slots.length} live`,
    );
  }
}
