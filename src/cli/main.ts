// What both programs do around the tunnel: parse options, set up logging, daemonise, start, and stop
// cleanly on SIGUSR1, SIGTERM or SIGINT (telling the peer, closing sockets, removing the pid file).
import * as dgram from 'dgram';
import * as fs from 'fs';
import { hostPortText } from '../core/addr';
import { portClass } from '../core/partition';
import { nativeIo, NativeIoOptions } from '../io/native-io';
import { RsockClient } from '../tunnel/client';
import { RsockServer } from '../tunnel/server';
import { Logger } from '../util/log';
import type { MetricsServer } from '../ops/metrics-server';
import type { Status } from '../ops/status';
import { isDaemonChild, spawnDaemon, tellParent } from './daemon';
import { buildCommand, ClientOptions, ConfigError, Kind, resolveOptions, ServerOptions } from './options';
import { clientConfig, serverConfig } from './tunnel-config';
import { connsOfWorker, effectiveWorkers, localPortRanges } from './workers-option';
import { formatStats, WorkerTunnel } from './workers';

interface Tunnel {
  stop(): Promise<void>;
  /** Asynchronous with --workers: the main thread asks every worker. */
  stats(): Record<string, number> | Promise<Record<string, number>>;
  status(): Status | Promise<Status>;
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

  let tunnel: Tunnel | undefined;
  try {
    // A worker that dies after start ends the process like a failed start; its supervisor restarts it.
    const onFatal = (msg: string) => {
      log.error(`${msg}: stopping`);
      void (async () => {
        await tunnel?.stop().catch(() => undefined);
        if (pidFile) fs.rmSync(pidFile, { force: true });
        process.exit(1);
      })();
    };
    if (opts.busyPollUs > 0) log.info(`busy polling: the event loop keeps polling for ${opts.busyPollUs} µs after input (--busy-poll)`);
    tunnel = kind === 'client' ? await startClient(opts as ClientOptions, log, onFatal) : await startServer(opts as ServerOptions, log, onFatal);
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
    log.info(`stopped; counters: ${formatStats(await tunnel!.stats())}`);
    log.closeFile();
    process.exit(code);
  };
  for (const sig of ['SIGUSR1', 'SIGTERM', 'SIGINT'] as const) process.on(sig, () => void stop(sig));
  process.on('SIGHUP', () => {
    const err = log.reopen();
    if (err) log.warn(`SIGHUP: ${err}; still writing to the old file`);
    else if (logFile) log.info(`SIGHUP: reopened ${logFile}`);
  });
  process.on('SIGUSR2', () => {
    void Promise.resolve(tunnel!.stats()).then((s) => log.info(`counters: ${formatStats(s)}`), (e: Error) => log.warn(`SIGUSR2: ${e.message}`));
  });
}

async function startClient(o: ClientOptions, log: Logger, onFatal: (msg: string) => void): Promise<Tunnel> {
  const cfg = await clientConfig(o);
  const io: NativeIoOptions = { busyPollUs: o.busyPollUs };
  const n = workerCount(o, log);
  let up: boolean;
  let tunnel: Tunnel;
  if (n > 1) {
    // Every client worker dials every port (each server class), with its share of --conns, from its own local ports.
    const ranges = localPortRanges(n);
    // SO_REUSEPORT would let these workers join another process's sockets on --ludp: bind each endpoint once, plainly, first.
    for (const e of [{ flag: '--ludp', host: cfg.ludpHost, port: cfg.ludpPort }, ...(cfg.forwards ?? []).map((f) => ({ flag: '--forward', host: f.localHost, port: f.localPort }))]) {
      await assertUdpFree(e.flag, e.host, e.port);
    }
    const inits = Array.from({ length: n }, (_, k) => ({ index: k, level: log.currentLevel, client: { ...cfg, connsPerPort: connsOfWorker(cfg.connsPerPort, k, n), worker: { localPorts: ranges[k] } }, io }));
    const workers = new WorkerTunnel(inits, log, onFatal);
    up = await workers.start();
    tunnel = workers;
  } else {
    const client = new RsockClient(cfg, log, nativeIo(io));
    await client.start();
    up = await client.waitUp(10000);
    tunnel = client;
  }
  if (!up) log.warn(`rsock-client ready, but no connection to ${cfg.serverIp} is up yet${n > 1 ? ' in every worker' : ''}; it keeps trying`);
  return tunnel;
}

async function startServer(o: ServerOptions, log: Logger, onFatal: (msg: string) => void): Promise<Tunnel> {
  const { cfg, decoy } = await serverConfig(o);
  const io: NativeIoOptions = { decoy, busyPollUs: o.busyPollUs };
  const n = workerCount(o, log);
  if (n > 1) {
    // Worker k serves the ports whose index is k mod n, and says so in every Joined (core/partition.ts).
    const server = (k: number) => ({ ...cfg, ports: cfg.ports.filter((_p, i) => portClass(i, n) === k), partition: { count: n, index: k } });
    const workers = new WorkerTunnel(Array.from({ length: n }, (_, k) => ({ index: k, level: log.currentLevel, server: server(k), io })), log, onFatal);
    await workers.start();
    return workers;
  }
  const server = new RsockServer(cfg, log, nativeIo(io));
  server.start();
  return server;
}

/** Throws "--ludp: udp bind HOST:PORT: address in use" when something holds the endpoint (a reuseport group included). */
function assertUdpFree(flag: string, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    sock.once('error', (e: NodeJS.ErrnoException) => {
      sock.close();
      reject(new Error(`${flag}: udp bind ${hostPortText(host, port)}: ${e.code === 'EADDRINUSE' ? 'Address already in use' : e.message}`));
    });
    sock.bind({ address: host, port, exclusive: true }, () => sock.close(() => resolve()));
  });
}

/** How many worker threads (--workers), and a line when fewer than asked. */
function workerCount(o: ClientOptions | ServerOptions, log: Logger): number {
  const w = effectiveWorkers(o.workers, { kind: o.kind, ports: o.ports, conns: o.kind === 'client' ? o.conns : 0, transport: o.type, explicit: o.workersGiven });
  if (w.why) log.warn(w.why);
  if (w.count > 1) log.info(`${w.count} worker threads`);
  return w.count;
}
