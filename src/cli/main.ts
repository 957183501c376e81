// What both programs do around the tunnel: parse options, set up logging, daemonise, start, and stop
// cleanly on SIGUSR1, SIGTERM or SIGINT (telling the peer, closing sockets, removing the pid file).
import * as fs from 'fs';
import { hostPortText } from '../core/addr';
import { DEFAULT_KEY } from '../core/keys';
import { nativeIo } from '../io/native-io';
import { RsockClient } from '../tunnel/client';
import { RsockServer } from '../tunnel/server';
import { Logger } from '../util/log';
import { defaultDevice, routeTo } from '../util/route';
import type { MetricsServer } from '../ops/metrics-server';
import type { Status } from '../ops/status';
import { isDaemonChild, spawnDaemon, tellParent } from './daemon';
import { buildCommand, ClientOptions, ConfigError, Kind, resolveOptions, ServerOptions } from './options';
import { familyOf, resolveIp } from './resolve';

interface Tunnel {
  stop(): Promise<void>;
  stats(): Record<string, number>;
  status(): Status;
}

export async function main(kind: Kind, argv: string[] = process.argv): Promise<void> {
  const name = `rsock-${kind}`;
  // Loaded only when used (http and friends cost about a MiB of RSS that most processes never need).
  if (argv[2] === 'status') process.exit(await (await import('./status-command')).statusCommand(kind, argv.slice(3)));
  const cmd = buildCommand(kind);
  cmd.parse(argv);
  let opts: ClientOptions | ServerOptions;
  try {
    opts = resolveOptions(cmd, kind);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${name}: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const pidFile = opts.pidfile ?? (opts.daemon ? `/run/${name}.pid` : null);
  const logFile = opts.log ?? (opts.daemon ? `/var/log/${name}.log` : null);

  if (opts.daemon && !isDaemonChild()) {
    process.exit(await spawnDaemon(name, logFile!, pidFile!));
  }

  // The daemon's stderr goes to the log file too (for crashes), but lines are written through the
  // logger's own descriptor, which SIGHUP can reopen after logrotate.
  const log = new Logger(opts.verbose ? 'debug' : 'info', logFile ?? undefined, opts.logFormat);
  const fail = (msg: string): never => {
    log.error(msg);
    if (isDaemonChild()) tellParent({ error: msg });
    else if (logFile) process.stderr.write(`${name}: ${msg}\n`);
    process.exit(1);
  };

  if (!opts.key) {
    log.warn('no --key given: using the built-in default key, which is public, so anyone can use this tunnel. Give both sides the same --key.');
  }

  let tunnel: Tunnel;
  try {
    tunnel = kind === 'client' ? await startClient(opts as ClientOptions, log) : await startServer(opts as ServerOptions, log);
  } catch (e) {
    return fail((e as Error).message);
  }

  let metrics: MetricsServer | null = null;
  if (opts.metrics) {
    try {
      const { startMetricsServer } = await import('../ops/metrics-server');
      metrics = await startMetricsServer(opts.metrics.host, opts.metrics.port, () => tunnel.status());
      log.info(`metrics at http://${metrics.address}/metrics, status at http://${metrics.address}/status`);
    } catch (e) {
      await tunnel.stop();
      return fail((e as Error).message);
    }
  }

  if (pidFile) {
    try {
      fs.writeFileSync(pidFile, `${process.pid}\n`);
    } catch (e) {
      await tunnel.stop();
      return fail(`--pidfile ${pidFile}: ${(e as Error).message}`);
    }
  }
  if (isDaemonChild()) tellParent({ ready: true, pid: process.pid });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn(`${signal} again: exiting at once`);
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: stopping`);
    let code = 0;
    try {
      await metrics?.close();
      await tunnel.stop();
    } catch (e) {
      log.error(`while stopping: ${(e as Error).message}`);
      code = 1;
    }
    if (pidFile) fs.rmSync(pidFile, { force: true });
    log.info(`stopped; counters: ${formatStats(tunnel.stats())}`);
    log.closeFile();
    process.exit(code);
  };
  for (const sig of ['SIGUSR1', 'SIGTERM', 'SIGINT'] as const) process.on(sig, () => void stop(sig));
  process.on('SIGHUP', () => {
    const err = log.reopen();
    if (err) log.warn(`SIGHUP: ${err}; still writing to the old file`);
    else if (logFile) log.info(`SIGHUP: reopened ${logFile}`);
  });
  process.on('SIGUSR2', () => log.info(`counters: ${formatStats(tunnel.stats())}`));
}

function formatStats(s: Record<string, number>): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** What both programs' flags say alike. */
function shared(o: ClientOptions | ServerOptions) {
  return {
    ports: o.ports,
    key: o.key ?? DEFAULT_KEY,
    mode: { obfs: o.obfs, aead: o.crypt === 'aead' },
    durationMs: o.durationSec * 1000,
    keepaliveMs: o.keepaliveSec * 1000,
    transport: o.type,
  };
}

async function startClient(o: ClientOptions, log: Logger): Promise<Tunnel> {
  const serverIp = await resolveIp(o.serverHost, '--taddr', familyOf(o.lcapIp));
  const dev = o.dev ?? routeTo(serverIp).dev;
  const client = new RsockClient(
    {
      ...shared(o),
      serverIp,
      connsPerPort: o.conns,
      ludpHost: o.ludpHost,
      ludpPort: o.ludpPort,
      // Local endpoints resolve here; targets are named as the server knows them, and it resolves its --allow.
      forwards: await Promise.all(o.forwards.map(async (f) => ({ ...f, localHost: await resolveIp(f.localHost, `--forward ${f.localHost}:${f.localPort}`) }))),
      device: dev,
      localIp: o.lcapIp,
      sni: o.sni,
    },
    log,
    nativeIo(),
  );
  await client.start();
  if (!(await client.waitUp(10000))) {
    log.warn(`rsock-client ready, but no connection to ${serverIp} is up yet; it keeps trying`);
  }
  return client;
}

async function startServer(o: ServerOptions, log: Logger): Promise<Tunnel> {
  const targetIp = await resolveIp(o.targetHost, '--taddr');
  const decoy = o.decoy ? { host: await resolveIp(o.decoy.host, '--decoy'), port: o.decoy.port } : undefined;
  const server = new RsockServer(
    {
      ...shared(o),
      targetHost: targetIp,
      targetPort: o.targetPort,
      targetName: familyOf(o.targetHost) ? undefined : o.targetHost,
      allow: await Promise.all(o.allow.map(async (a) => ({ host: a.host, ip: await resolveIp(a.host, '--allow'), port: a.port }))),
      device: o.dev ?? defaultDevice() ?? 'any',
      listenIp: o.lcapIp,
      decoy: decoy ? hostPortText(decoy.host, decoy.port) : null,
    },
    log,
    nativeIo({ decoy }),
  );
  server.start();
  return server;
}
