// The client's local UDP endpoints: --ludp (forward index 0, to the server's --taddr) and one per
// --forward (index 1..), and what the server answered about each forward in Joined. A forward the
// server refused delivers nothing, so its datagrams are dropped here instead of crossing the tunnel.
import { decodeForwardAnswers, encodeForwardTable, ForwardTarget, targetName } from '../core/forwards';
import { Logger } from '../util/log';
import type { UdpMux } from './io';

export interface ClientForward {
  localHost: string;
  localPort: number;
  /** As the user wrote it: the server resolves it and matches it against its --allow. */
  target: ForwardTarget;
}

export class ClientEndpoints {
  /** UDP socket id per forward index. */
  readonly socks: number[] = [];
  private readonly indexBySock = new Map<number, number>();
  /** What Joined said per forward; null until the first Joined. */
  private answers: boolean[] | null = null;
  /** The table Join carries; null without --forward, so that Join is the same as before forwards. */
  readonly table: Buffer | null;

  constructor(private readonly forwards: readonly ClientForward[], private readonly log: Logger) {
    this.table = forwards.length > 0 ? encodeForwardTable(forwards.map((f) => f.target)) : null;
  }

  /** Binds --ludp and every forward's local endpoint; throws an error naming the flag. */
  /** `reusePort`: each client worker binds the same endpoints (SO_REUSEPORT; the kernel spreads the flows). */
  bind(udp: UdpMux, ludpHost: string, ludpPort: number, reusePort = false): void {
    const specs = [{ flag: '--ludp', host: ludpHost, port: ludpPort }, ...this.forwards.map((f) => ({ flag: `--forward ${describe(f)}`, host: f.localHost, port: f.localPort }))];
    for (const s of specs) {
      let id: number;
      try {
        id = udp.bind(s.host, s.port, reusePort);
      } catch (e) {
        for (const done of this.socks) udp.close(done);
        throw new Error(`${s.flag}: ${(e as Error).message}`);
      }
      this.indexBySock.set(id, this.socks.length);
      this.socks.push(id);
    }
  }

  /** The forward index of the local socket a datagram came in on (0 for unknown ids). */
  index(sock: number): number {
    return this.indexBySock.get(sock) ?? 0;
  }

  get count(): number {
    return this.forwards.length;
  }

  /** Whether datagrams of forward `fwd` may go: --ludp always; a forward once the server allowed it. */
  allowed(fwd: number): boolean {
    return fwd === 0 || this.answers?.[fwd - 1] === true;
  }

  /** For logs: "127.0.0.1:5353 -> dns.internal:53". */
  name(fwd: number): string {
    const f = this.forwards[fwd - 1];
    return f ? describe(f) : 'the --ludp endpoint';
  }

  /** A Joined's payload: the server's answers, logged when they change (first Joined, server restarted with another --allow). */
  onJoined(buf: Buffer, off: number, len: number): void {
    if (!this.table) return;
    const got = decodeForwardAnswers(buf, off, len);
    const answers = got && got.length === this.forwards.length ? got : this.forwards.map(() => false);
    if (this.answers && this.answers.every((a, i) => a === answers[i])) return;
    this.answers = answers;
    if (!got) {
      this.log.error(`the server did not answer the forward table (an rsock-server without forward support?): every --forward is refused; --ludp still works`);
      return;
    }
    this.forwards.forEach((f, i) => {
      if (answers[i]) this.log.info(`forward ${describe(f)}: allowed by the server`);
      else this.log.warn(`forward ${describe(f)}: refused by the server (give its rsock-server --allow=${targetName(f.target)}); its datagrams are dropped`);
    });
  }
}

function describe(f: ClientForward): string {
  return `${f.localHost}:${f.localPort} -> ${targetName(f.target)}`;
}
