// What an active probe gets: a connection that turned out not to be an rsock client is handed back to
// the kernel (SocketWatcher.handBack) and served here as ordinary TCP, so that the port looks like
// whatever --decoy points at, or like a server that hung up on a request it did not understand.
// Nothing here logs: a probe flood must not become a log flood (the server logs, rate-limited).
import * as net from 'node:net';

export interface DecoyTarget {
  host: string;
  port: number;
}

export interface ProbeLimits {
  /** A spliced pair with no traffic either way for this long is torn down. */
  idleMs: number;
  /** Probe connections held at once; beyond this a new probe is closed at once. */
  maxActive: number;
  /** Without a decoy: how long a probe that was sent a FIN may stay before it is destroyed. */
  lingerMs: number;
}

export const PROBE_LIMITS: ProbeLimits = { idleMs: 60_000, maxActive: 64, lingerMs: 5_000 };

export interface ProbeStats {
  /** Probes spliced to the decoy or ended with a FIN. */
  served: number;
  /** Probes closed at once because maxActive were being served. */
  refused: number;
  /** Probe connections being served now. */
  active: number;
}

export class ProbeServer {
  /** Every probe being served, with its connection to the decoy when it has one. */
  private readonly live = new Map<net.Socket, net.Socket | null>();
  private served = 0;
  private refused = 0;

  constructor(
    private readonly decoy?: DecoyTarget,
    private readonly limits: ProbeLimits = PROBE_LIMITS,
  ) {}

  /** Takes ownership of `fd`, a connected TCP socket handed back to the kernel. */
  serveProbe(fd: number): void {
    // allowHalfOpen: a FIN from one side is passed on, not answered by closing ours.
    const probe = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    // Probes never keep the process alive: a stopping server does not wait for a stranger's connection.
    probe.unref();
    if (this.live.size >= this.limits.maxActive) {
      this.refused++;
      probe.destroy();
      return;
    }
    this.served++;
    this.live.set(probe, this.decoy ? this.splice(probe, this.decoy) : this.hangUp(probe));
    probe.once('close', () => this.live.delete(probe));
  }

  stats(): ProbeStats {
    return { served: this.served, refused: this.refused, active: this.live.size };
  }

  /** Destroys every probe connection (at shutdown). */
  close(): void {
    for (const [probe, upstream] of [...this.live]) {
      probe.destroy();
      upstream?.destroy();
    }
  }

  /**
   * Both directions piped; a FIN from one side becomes a FIN to the other (pipe() ends the writer when
   * its reader ends), and each socket closes by itself once both its directions are done. An error or
   * silence on either side destroys both: nothing is left half-dead.
   */
  private splice(probe: net.Socket, to: DecoyTarget): net.Socket {
    const upstream = net.connect({ host: to.host, port: to.port, allowHalfOpen: true });
    upstream.unref();
    const destroyBoth = () => {
      probe.destroy();
      upstream.destroy();
    };
    for (const s of [probe, upstream]) {
      s.on('error', destroyBoth);
      // Reads and writes both count as activity, so one-way traffic keeps both ends alive.
      s.setTimeout(this.limits.idleMs, destroyBoth);
    }
    // A decoy that cannot be reached is an error on upstream: the probe is destroyed with it.
    probe.pipe(upstream);
    upstream.pipe(probe);
    return upstream;
  }

  /** What a server that did not understand the request does: FIN at once, discard what still comes. */
  private hangUp(probe: net.Socket): null {
    const timer = setTimeout(() => probe.destroy(), this.limits.lingerMs);
    timer.unref();
    probe.on('data', () => {});
    probe.on('error', () => probe.destroy());
    probe.on('end', () => probe.destroy());
    probe.once('close', () => clearTimeout(timer));
    probe.end();
    return null;
  }
}
