// `rsock-client status --metrics=HOST:PORT [--watch] [--json]` (and rsock-server's): reads a running
// process's /status and prints the table (src/ops/status-table.ts). Rates need two samples, so a
// single run samples twice, a second apart; --watch redraws every second until Ctrl-C.
import * as http from 'http';
import { Command, Option } from 'commander';
import { parseHostPort } from '../core/addr';
import { Status } from '../ops/status';
import { renderStatus } from '../ops/status-table';
import { Kind } from './options';

const TIMEOUT_MS = 3000;

export function fetchStatus(host: string, port: number): Promise<Status> {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/status', timeout: TIMEOUT_MS, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`http://${where}/status answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(body) as Status);
        } catch {
          reject(new Error(`http://${where}/status did not answer JSON: is that an rsock --metrics address?`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`cannot read http://${where}/status: ${e.code ?? e.message} (is rsock running with --metrics=${where}?)`)));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Output { out(s: string): void; err(s: string): void }
const STDIO: Output = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Returns the exit status: 0, 1 (the process could not be read), 2 (bad arguments). */
export async function statusCommand(kind: Kind, argv: string[], io: Output = STDIO): Promise<number> {
  const cmd = new Command(`rsock-${kind} status`)
    .description(`Shows what a running rsock-${kind} is doing: totals, drops, every connection and the flows. It must run with --metrics.`)
    .helpOption('-h, --help', 'show this help')
    .addOption(new Option('--metrics <host:port>', 'the --metrics address of the running process').makeOptionMandatory())
    .addOption(new Option('-w, --watch', 'redraw every second until Ctrl-C'))
    .addOption(new Option('--json', 'print /status as JSON once, instead of the table'))
    .allowExcessArguments(false);
  cmd.parse(argv, { from: 'user' });
  const o = cmd.opts() as { metrics: string; watch?: boolean; json?: boolean };
  let target: { host: string; port: number };
  try {
    target = parseHostPort(o.metrics);
  } catch (e) {
    io.err(`rsock-${kind} status: --metrics: ${(e as Error).message}\n`);
    return 2;
  }
  try {
    if (o.json) {
      io.out(`${JSON.stringify(await fetchStatus(target.host, target.port), null, 2)}\n`);
      return 0;
    }
    let prev = await fetchStatus(target.host, target.port);
    let prevAt = Date.now();
    for (let i = 0; ; i++) {
      await sleep(1000);
      const s = await fetchStatus(target.host, target.port);
      const now = Date.now();
      const text = renderStatus(s, prev, (now - prevAt) / 1000);
      if (!o.watch) {
        io.out(text);
        return 0;
      }
      io.out(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : i > 0 ? '\n' : ''}${text}`);
      prev = s;
      prevAt = now;
    }
  } catch (e) {
    io.err(`rsock-${kind} status: ${(e as Error).message}\n`);
    return 1;
  }
}
