// rsock instances of the benchmark: rsock-server in the server ns, rsock-client in the client ns,
// started with the harness's command lines (test/lib/rsock.ts), stopped by PID, with their exit
// status and their last counters line recorded for the report.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { BenchHost } from './host';
import { Proc, sleep } from '../test/lib/proc';
import { clientArgs, LOG, READY_TIMEOUT_MS, REPO, RsockOptions, serverArgs } from '../test/lib/rsock';
import { lastLine, Results } from './results';

export interface Instance { name: string; n: number; server: Proc; client: Proc }

const short = (argv: string[], prog: string) => [prog, ...argv.slice(2)].join(' ').replace(/--key=\S+/, '--key=K');

export class Instances {
  /** Why the last start() failed. */
  reason = '';

  /** count: the start number before the first, so that two paths' notes (rsock_client_exit_N) do not collide. */
  constructor(private readonly pair: BenchHost, private readonly r: Results, private readonly key: string, private count = 0) {}

  /** Starts server then client (each must log "ready" within 15 s); undefined (and `reason`) on failure. */
  /** `clientExtra`: arguments for the client only (after `extra`, which both get). */
  async start(name: string, ports: string, taddr: string, ludp: number, extra: string[] = [], clientExtra: string[] = []): Promise<Instance | undefined> {
    const n = ++this.count;
    this.reason = '';
    if (!process.env.RSOCK_SERVER_BIN && !fs.existsSync(path.join(REPO, 'dist', 'src', 'cli', 'main.js'))) {
      this.reason = 'rsock not built (npm run build)';
      return undefined;
    }
    const so: RsockOptions = { ports, key: this.key, taddr, extra };
    const sArgs = serverArgs(this.pair, so);
    const server = this.pair.spawn('server', sArgs, { name: `rsock-server-${n}` });
    this.r.commands.push(short(sArgs, 'rsock-server'));
    try {
      await server.waitFor(LOG.ready, READY_TIMEOUT_MS);
    } catch {
      this.reason = `rsock-server not ready: ${lastLine(server.output())}`;
      await this.stop({ name, n, server, client: server }, true);
      return undefined;
    }
    const cArgs = clientArgs(this.pair, { ports, key: this.key, ludp: `127.0.0.1:${ludp}`, extra: [...extra, ...clientExtra] });
    const client = this.pair.spawn('client', cArgs, { name: `rsock-client-${n}` });
    this.r.commands.push(short(cArgs, 'rsock-client'));
    const inst = { name, n, server, client };
    try {
      await client.waitFor(LOG.ready, READY_TIMEOUT_MS);
    } catch {
      this.reason = server.running ? `rsock-client not ready within 15 s: ${lastLine(client.output())}`
        : `rsock-server died: ${lastLine(server.output())}`;
      await this.stop(inst);
      return undefined;
    }
    return inst;
  }

  ok(i: Instance | undefined): boolean { return !!i && i.client.running && i.server.running; }

  /** Makes both processes log a counters line (SIGUSR2) and records the first one of each log. */
  async counters(i: Instance): Promise<void> {
    i.client.signal('SIGUSR2');
    i.server.signal('SIGUSR2');
    await sleep(300);
    for (const [side, p] of [['client', i.client], ['server', i.server]] as const) {
      const line = p.output().split('\n').find((l) => /counters:/.test(l));
      if (line) this.r.note(`counters_rsock-${side}-${i.name}`, line.slice(0, 400));
    }
  }

  /** SIGTERM; notes a non-zero exit status, or a process that had died by itself. */
  async stop(i: Instance, serverOnly = false): Promise<void> {
    const sides = serverOnly ? [['server', i.server] as const] : ([['client', i.client], ['server', i.server]] as const);
    for (const [side, p] of sides) {
      const alive = p.running;
      await p.stop(3000);
      const rc = p.exitCode ?? (p.exitSignal ? 128 + (signalNumber(p.exitSignal) ?? 0) : 0);
      if (!alive) this.r.note(`rsock_${side}_died_${i.n}`, rc);
      else if (rc !== 0) this.r.note(`rsock_${side}_exit_${i.n}`, rc);
    }
  }
}

function signalNumber(sig: string): number | undefined {
  return (os.constants.signals as Record<string, number>)[sig];
}
