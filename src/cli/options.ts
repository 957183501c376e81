// Flags, config file and validation for both programs. Flags follow the original rsock's names.
// Precedence: command-line flag > -f config.json > built-in default. Every bad value becomes one
// ConfigError line that names the flag.
import * as fs from 'fs';
import { Command, Option } from 'commander';
import { parsePorts, PortListError } from '../core/ports';
import { hostText, parseHostPort, parseIp } from '../core/addr';
import { sniError } from '../core/tls-record';
import { LogFormat } from '../util/log';
import type { ClientForward } from '../tunnel/client-endpoints';
import { collect, parseAllow, parseForwards } from './forward-options';
import { helpAfter } from './help-text';
import { versionLine } from './version';
import { parseWorkers, workersHelp, WorkersSetting } from './workers-option';
import type { TransportType } from '../core/udp-link';

export { versionLine };
export type Kind = 'client' | 'server';

export class ConfigError extends Error {}

export interface CommonConfig {
  dev: string | null;
  ports: number[];
  lcapIp: string;
  durationSec: number;
  keepaliveSec: number;
  key: string | null;
  daemon: boolean;
  pidfile: string | null;
  log: string | null;
  logFormat: LogFormat;
  verbose: boolean;
  obfs: 'tls' | 'none';
  crypt: 'none' | 'aead';
  type: TransportType;
  /** Where --metrics serves /metrics and /status; null: off. */
  metrics: { host: string; port: number } | null;
  /** --workers (workers-option.ts); `workersGiven`: set by a flag or -f, not the default. */
  workers: WorkersSetting; workersGiven: boolean;
  /** --busy-poll in µs; 0: off. */
  busyPollUs: number;
}

export interface ClientOptions extends CommonConfig {
  kind: 'client';
  serverHost: string;
  ludpHost: string;
  ludpPort: number;
  conns: number;
  sni: string;
  forwards: ClientForward[];
}

export interface ServerOptions extends CommonConfig {
  kind: 'server';
  targetHost: string;
  targetPort: number;
  /** Where connections that are not rsock clients (probes) are spliced; null: they are closed. */
  decoy: { host: string; port: number } | null;
  /** Targets a client's --forward may name besides --taddr, not resolved yet. */
  allow: { host: string; port: number }[];
}

export const DEFAULT_SNI = 'www.microsoft.com';

/** The keys -f accepts, which are the long flag names. */
const COMMON_KEYS = ['dev', 'taddr', 'ports', 'lcapIp', 'duration', 'key', 'hash', 'keepalive', 'daemon', 'pidfile', 'log', 'log-format', 'verbose', 'obfs', 'crypt', 'type', 'metrics', 'workers', 'busy-poll'];
const CLIENT_KEYS = [...COMMON_KEYS, 'ludp', 'conns', 'sni', 'forward'];
const SERVER_KEYS = [...COMMON_KEYS, 'decoy', 'allow'];

export function buildCommand(kind: Kind): Command {
  const cmd = new Command(`rsock-${kind}`);
  const isClient = kind === 'client';
  cmd
    .description(
      isClient
        ? 'Carries the UDP datagrams sent to --ludp to an rsock-server inside fake TCP connections, and brings the replies back.'
        : 'Accepts fake TCP connections from rsock-clients on --ports and forwards each app flow to the UDP service at --taddr.',
    )
    .helpOption('-h, --help', 'show this help')
    .version(versionLine(kind), '-V, --version', 'print the version and the wire protocol version')
    .addOption(
      new Option(
        '-t, --taddr <addr>',
        isClient
          ? "the server's IPv4 or IPv6 address or host name (required)"
          : 'the target UDP service as host:port, e.g. 127.0.0.1:9999 or [::1]:9999 (required)',
      ),
    )
    .addOption(
      new Option(
        '-d, --dev <name>',
        isClient
          ? 'network device to capture on (default: the device of the route to the server)'
          : 'network device to capture on (default: the device of the default route, else "any")',
      ),
    )
    .addOption(new Option('-p, --ports <list>', 'server ports, e.g. 80,443,10000-10005').default('10001-10010'));
  if (isClient) {
    cmd
      .addOption(new Option('-l, --ludp <host:port>', "local UDP endpoint your app sends to ([::1]:port for IPv6); it goes to the server's --taddr").default('127.0.0.1:30000'))
      .addOption(
        new Option(
          '--forward <local=target>',
          'LOCAL_HOST:PORT=TARGET_HOST:PORT: one more local UDP endpoint, whose datagrams go to TARGET (named as the server knows it) instead of --taddr; repeatable; the server must --allow the target',
        ).argParser(collect),
      )
      .addOption(new Option('--conns <n>', 'fake TCP connections per server port').default('1'))
      .addOption(new Option('--sni <name>', 'server name in the TLS-shaped greeting (--obfs=tls)').default(DEFAULT_SNI));
  } else {
    cmd
      .addOption(
        new Option('--decoy <host:port>', 'TCP service (host:port or [ipv6]:port) that gets connections which are not rsock clients (active probes), e.g. a web server; default: such connections are closed'),
      )
      .addOption(
        new Option('--allow <host:port>', "a UDP target a client's --forward may name besides --taddr; repeatable; forwards to anything else are refused and logged").argParser(collect),
      );
  }
  cmd
    .addOption(
      new Option(
        '--lcapIp <ip>',
        isClient
          ? 'local IPv4 or IPv6 address to dial from; a host name in --taddr resolves to its family (default: chosen by the kernel)'
          : 'local IPv4 or IPv6 address to listen on; "::" all IPv6, "0.0.0.0" all IPv4 (default: all, IPv6 and IPv4)',
      ),
    )
    .addOption(new Option('--duration <seconds>', 'an app flow with no traffic either way for this long is closed').default('30'))
    .addOption(new Option('--keepalive <seconds>', 'keepalive interval per connection; 3 missed replies mark it dead (2 on a udp path)').default('2'))
    .addOption(new Option('--key <secret>', 'shared secret that authenticates every packet (default: a public built-in key)'))
    .addOption(new Option('--hash <secret>', 'same as --key (the original rsock name)'))
    .addOption(new Option('--obfs <mode>', 'how connections look: "tls" (a TLS 1.3 handshake, then application-data records) or "none" (compact); both ends must agree').default('tls'))
    .addOption(new Option('--crypt <mode>', '"aead" also encrypts every datagram (ChaCha20-Poly1305), for apps that do not encrypt their own; both ends must agree').default('none'))
    .addOption(
      new Option(
        '--type <tcp|udp|all>',
        isClient
          ? '"tcp": fake TCP connections; "udp": the same frames in UDP datagrams to the ports; "all": UDP while it answers, fake TCP when it does not (probing UDP again every few seconds)'
          : 'what clients may use: "tcp" (fake TCP), "udp" (UDP datagrams on the ports) or "all" (both)',
      ).default('tcp'),
    )
    .addOption(new Option('--workers <n|auto>', workersHelp(isClient)))
    .addOption(new Option('--busy-poll <us>', 'after input, keep polling for this many microseconds (0-10000) rather than sleep: less latency (a wake-up saved per datagram that comes within it, most on VMs) for more CPU (up to a core per process while traffic flows); 0 = off').default('0'))
    .addOption(new Option('--daemon <0|1>', 'run in the background once ready').default('0'))
    .addOption(new Option('--pidfile <path>', `pid file (default with --daemon=1: /run/rsock-${kind}.pid)`))
    .addOption(new Option('--log <path>', `log file (default: stderr; with --daemon=1: /var/log/rsock-${kind}.log)`))
    .addOption(new Option('--metrics <host:port>', 'serve Prometheus metrics at /metrics and the status at /status on this address, e.g. 127.0.0.1:9100 (default: off); `status --metrics=...` shows them'))
    .addOption(new Option('--log-format <format>', '"text" (lines for people) or "json" (one object per line)').default('text'))
    .addOption(new Option('-v, --verbose', 'log every connection and flow event'))
    .addOption(new Option('-f, --config <file>', `JSON file with any of the long option names as keys${isClient ? ' ("forward": a list)' : ' ("allow": a list)'}; flags override it`))
    .addHelpText('after', helpAfter(kind))
    .showHelpAfterError(false)
    .allowExcessArguments(false);
  return cmd;
}

type Raw = Record<string, unknown>;

function readConfigFile(file: string, kind: Kind): Raw {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`-f ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`-f ${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`-f ${file}: must hold a JSON object`);
  const allowed = kind === 'client' ? CLIENT_KEYS : SERVER_KEYS;
  for (const k of Object.keys(data)) {
    if (!allowed.includes(k)) throw new ConfigError(`-f ${file}: unknown key "${k}" (known: ${allowed.join(', ')})`);
  }
  return data as Raw;
}

/** Merges flags with -f and defaults, then validates. Throws ConfigError. */
export function resolveOptions(cmd: Command, kind: Kind): ClientOptions | ServerOptions {
  const cli = cmd.opts() as Raw;
  const file = typeof cli.config === 'string' ? readConfigFile(cli.config, kind) : {};
  // The config file's keys are the long flag names ("log-format"); commander's are camel-cased ("logFormat").
  const flag = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const pick = (name: string): unknown => {
    const src = cmd.getOptionValueSource(name);
    if (src === 'cli' || src === 'env') return cli[name];
    const key = flag(name);
    if (name in file) return file[name];
    if (key in file) return file[key];
    return cli[name];
  };
  const str = (name: string): string | null => {
    const v = pick(name);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError(`--${name}: expected a string, got ${JSON.stringify(v)}`);
    return String(v);
  };
  const list = (name: string): string[] => {
    const v = pick(name);
    if (v === undefined || v === null) return [];
    const items = Array.isArray(v) ? v : [v];
    if (!items.every((x) => typeof x === 'string')) throw new ConfigError(`--${name}: expected a list of strings, got ${JSON.stringify(v)}`);
    return items as string[];
  };
  const configError = (msg: string) => new ConfigError(msg);
  const num = (name: string, min: number, max: number, integer = false): number => {
    const s = str(name);
    const n = s === null ? NaN : Number(s);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)) || s?.trim() === '') {
      throw new ConfigError(`--${flag(name)}: "${s}" is not ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
    }
    return n;
  };

  let ports: number[];
  try {
    ports = parsePorts(str('ports') ?? '');
  } catch (e) {
    if (e instanceof PortListError) throw new ConfigError(`--ports: ${e.message}`);
    throw e;
  }
  const daemonRaw = str('daemon') ?? '0';
  if (daemonRaw !== '0' && daemonRaw !== '1') throw new ConfigError(`--daemon: "${daemonRaw}" must be 0 or 1`);
  const key = str('key');
  const hash = str('hash');
  if (key !== null && hash !== null && key !== hash) throw new ConfigError('--key and --hash are the same setting and were given different values');
  const secret = key ?? hash;
  if (secret !== null && secret.length === 0) throw new ConfigError('--key: the secret is empty');
  const lcapIp = hostText(str('lcapIp') ?? '');
  if (lcapIp && !parseIp(lcapIp)) throw new ConfigError(`--lcapIp: "${lcapIp}" is not an IPv4 or IPv6 address`);
  const verboseV = pick('verbose');
  const obfs = str('obfs') ?? 'tls';
  if (obfs !== 'tls' && obfs !== 'none') throw new ConfigError(`--obfs: "${obfs}" must be tls or none`);
  const crypt = str('crypt') ?? 'none';
  if (crypt !== 'none' && crypt !== 'aead') throw new ConfigError(`--crypt: "${crypt}" must be none or aead`);
  const logFormat = str('logFormat') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw new ConfigError(`--log-format: "${logFormat}" must be text or json`);
  const hostPort = (name: string): { host: string; port: number } | null => {
    const v = str(name);
    if (v === null) return null;
    try {
      return parseHostPort(v);
    } catch (e) {
      throw new ConfigError(`--${name}: ${(e as Error).message}`);
    }
  };
  const type = str('type') ?? 'tcp';
  if (type !== 'tcp' && type !== 'udp' && type !== 'all') throw new ConfigError(`--type: "${type}" must be tcp, udp or all`);
  const common: CommonConfig = {
    dev: str('dev'),
    ports,
    lcapIp,
    durationSec: num('duration', 1, 86400),
    keepaliveSec: num('keepalive', 0.2, 60),
    key: secret,
    daemon: daemonRaw === '1',
    pidfile: str('pidfile'),
    log: str('log'),
    logFormat,
    verbose: verboseV === true || verboseV === 'true' || verboseV === 1 || verboseV === '1',
    obfs,
    crypt,
    type,
    metrics: hostPort('metrics'),
    workers: parseWorkers(str('workers'), configError),
    workersGiven: pick('workers') !== undefined,
    busyPollUs: num('busyPoll', 0, 10000, true),
  };
  const taddr = str('taddr');
  if (!taddr) throw new ConfigError(kind === 'client' ? "--taddr: the server's address is required" : '--taddr: the target host:port is required');
  if (kind === 'client') {
    if (!parseIp(hostText(taddr)) && /:\d+$/.test(taddr)) {
      throw new ConfigError(`--taddr: give the server's address only ("${hostText(taddr.replace(/:\d+$/, ''))}"); its ports go in --ports`);
    }
    const server = parseIp(hostText(taddr));
    const local = lcapIp ? parseIp(lcapIp) : null;
    if (server && local && !server.ip6 !== !local.ip6) {
      throw new ConfigError(`--lcapIp: ${lcapIp} and the server's address ${hostText(taddr)} are not of the same IP version`);
    }
    const ludp = hostPort('ludp') ?? { host: '127.0.0.1', port: 30000 };
    const sni = str('sni') ?? DEFAULT_SNI;
    const bad = sniError(sni);
    if (bad) throw new ConfigError(`--sni: "${sni}" is not a host name: ${bad}`);
    const forwards = parseForwards(list('forward'), ludp, configError);
    return { ...common, kind, serverHost: hostText(taddr), ludpHost: ludp.host, ludpPort: ludp.port, conns: num('conns', 1, 64, true), sni, forwards };
  }
  const target = hostPort('taddr')!;
  return { ...common, kind, targetHost: target.host, targetPort: target.port, decoy: hostPort('decoy'), allow: parseAllow(list('allow'), configError) };
}
