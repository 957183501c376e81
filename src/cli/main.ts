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
import { isDaemonChild, spawnDaemon, tellParent } from './daemon';
import { buildCommand, ClientOptions, ConfigError, Kind, resolveOptions, ServerOptions } from './options';
import { familyOf, resolveIp } from './resolve';

interface Tunnel {
  stop(): Promise<void>;
  stats(): Record<string, number>;
}

export async function main(kind: Kind, argv: string[] = process.argv): Promise<void> {
  const name = `rsock-${kind}`;
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

  const log = new Logger(opts.verbose ? 'debug' : 'info', isDaemonChild() ? undefined : logFile ?? undefined);
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
  for (const sig of ['SIGUSR1', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void stop(sig));
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
