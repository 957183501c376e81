// Everything the tests assume about the rsock CLI lives here, so it is easy to adjust.
//
//   rsock-server --dev=DEV --taddr=127.0.0.1:9999 --ports=10001-10010 --key=SECRET [--duration=S]
//                [--keepalive=S] [--daemon=1 --pidfile=F --log=F] [-v]          (server namespace)
//   rsock-client --dev=DEV --taddr=10.201.2.2 --ports=10001-10010 --ludp=127.0.0.1:30000 --key=SECRET
//                                                                               (client namespace)
// Logs are readable lines on stderr (or --log). Ready: a line with "ready". Flow expiry: "expired".
// Client (re)connection: "up". Daemon: returns 0 once ready, pidfile holds the pid; SIGUSR1, SIGTERM
// and SIGINT stop it with exit 0 and remove the pidfile.
import * as path from 'path';
import { Topology } from './netns';
import { SpawnInNsOptions } from './ns-set';
import { Proc } from './proc';

/**
 * What starting rsock needs of a topology: the three-namespace Topology (netns.ts) and the
 * benchmark's two-namespace DirectPair (direct-pair.ts) both are one.
 */
export interface TunnelHost {
  readonly id: string;
  readonly dev: { client: string; server: string };
  /** The server's address as the client reaches it. */
  readonly serverAddr: string;
  spawn(role: 'client' | 'server', cmd: string[], opts: SpawnInNsOptions): Proc;
}

/** Repository root (this file runs from dist/test/lib). */
export const REPO = path.resolve(__dirname, '..', '..', '..');
/** The programs under test; RSOCK_SERVER_BIN / RSOCK_CLIENT_BIN point the tests at other builds. */
export const SERVER_BIN = process.env.RSOCK_SERVER_BIN ?? path.join(REPO, 'bin', 'rsock-server.js');
export const CLIENT_BIN = process.env.RSOCK_CLIENT_BIN ?? path.join(REPO, 'bin', 'rsock-client.js');

export const LOG = {
  ready: /\bready\b/,
  expired: /\bexpired\b/,
  up: /\bup\b/,
  /** Client: a connection lost ("connection 3 to port 10004 down: reset ..."). */
  down: /\bdown\b/,
  /** Server: a connection of a session ended ("client ab12: connection from ... closed: ..."). */
  closed: /\bclosed\b/,
  /** Server: a new session ("client ab12 joined from ..."). */
  joined: /\bjoined\b/,
  /** Server: a session's connection retired for a newer one on its slot. */
  replaced: /\breplaced\b/,
};

/** Lines of a process's output (from `since`, a Proc.mark()) that match `re`. */
export function linesMatching(p: Proc, re: RegExp, since = 0): string[] {
  return p.output().slice(since).split('\n').filter((l) => re.test(l));
}

/**
 * Lines matching `re` that name one of `endpoints` ("10.201.2.1:41360"): the server's lines about the
 * real client's connections, not about a prober's or an attacker's connection it may also log.
 */
export function linesAbout(p: Proc, re: RegExp, endpoints: string[], since = 0): string[] {
  return linesMatching(p, re, since).filter((l) => endpoints.some((e) => new RegExp(`${e.replace(/\./g, '\\.')}(?!\\d)`).test(l)));
}

/** How long a server or client may take to log "ready". */
export const READY_TIMEOUT_MS = 15_000;

/** UDP target of the server (the echo server or kcptun-server listens here, in the server ns). */
export const SERVER_TARGET = '127.0.0.1:9999';
/** Local UDP address of the client (applications in the client ns send here). */
export const CLIENT_LUDP = '127.0.0.1:30000';
export const PORTS = '10001-10010';
export const PORT_MIN = 10001;
export const PORT_MAX = 10010;

export interface RsockOptions {
  key?: string;
  ports?: string;
  duration?: number;
  keepalive?: number;
  /** Device; default: the namespace's veth. null: leave --dev out (the program picks one). */
  dev?: string | null;
  verbose?: boolean;
  /** Server: its UDP target (default SERVER_TARGET). Client: the server's address (default topo.serverAddr). */
  taddr?: string;
  /** Client only: its local UDP address (default CLIENT_LUDP). */
  ludp?: string;
  /** Protocol v2 (issue 7): --obfs=tls|none, --sni=NAME (client), --decoy=HOST:PORT (server), --crypt=none|aead. */
  obfs?: 'tls' | 'none';
  sni?: string;
  decoy?: string;
  crypt?: 'none' | 'aead';
  /** Further arguments, verbatim. */
  extra?: string[];
}

export function testKey(topo: { id: string }): string {
  return `rsock-test-${topo.id}`;
}

function common(topo: TunnelHost, o: RsockOptions, dev: string): string[] {
  const a: string[] = [];
  if (o.dev !== null) a.push(`--dev=${o.dev ?? dev}`);
  a.push(`--ports=${o.ports ?? PORTS}`, `--key=${o.key ?? testKey(topo)}`);
  if (o.duration !== undefined) a.push(`--duration=${o.duration}`);
  if (o.keepalive !== undefined) a.push(`--keepalive=${o.keepalive}`);
  if (o.verbose) a.push('-v');
  if (o.obfs !== undefined) a.push(`--obfs=${o.obfs}`);
  if (o.sni !== undefined) a.push(`--sni=${o.sni}`);
  if (o.decoy !== undefined) a.push(`--decoy=${o.decoy}`);
  if (o.crypt !== undefined) a.push(`--crypt=${o.crypt}`);
  return a.concat(o.extra ?? []);
}

export function serverArgs(topo: TunnelHost, o: RsockOptions = {}): string[] {
  return [process.execPath, SERVER_BIN, `--taddr=${o.taddr ?? SERVER_TARGET}`, ...common(topo, o, topo.dev.server)];
}

export function clientArgs(topo: TunnelHost, o: RsockOptions = {}): string[] {
  return [process.execPath, CLIENT_BIN, `--taddr=${o.taddr ?? topo.serverAddr}`, `--ludp=${o.ludp ?? CLIENT_LUDP}`, ...common(topo, o, topo.dev.client)];
}

/** Starts rsock-server in the server namespace and waits for its "ready" line. */
export async function startServer(topo: TunnelHost, o: RsockOptions = {}, name = 'rsock-server'): Promise<Proc> {
  const p = topo.spawn('server', serverArgs(topo, o), { name });
  await p.waitFor(LOG.ready, READY_TIMEOUT_MS);
  return p;
}

/** Starts rsock-client in the client namespace and waits for its "ready" line. */
export async function startClient(topo: TunnelHost, o: RsockOptions = {}, name = 'rsock-client'): Promise<Proc> {
  const p = topo.spawn('client', clientArgs(topo, o), { name });
  await p.waitFor(LOG.ready, READY_TIMEOUT_MS);
  return p;
}

/** Upper bound for the tunnel to carry traffic again after a reset or a server restart. */
export const RECOVERY_BOUND_MS = 20_000;
/** Extra time allowed beyond --duration for a flow to be expired. */
export const EXPIRY_SLACK_MS = 5_000;

/** Starts rsock-server, then rsock-client, each waiting for "ready". */
export async function startTunnel(topo: TunnelHost, o: { server?: RsockOptions; client?: RsockOptions } = {}): Promise<{ server: Proc; client: Proc }> {
  const server = await startServer(topo, o.server);
  const client = await startClient(topo, o.client);
  return { server, client };
}

/** The server's per-flow UDP sockets: owned by `pid` and connected to the target. */
export async function serverFlowSockets(topo: Topology, pid: number): Promise<Array<{ local: string; peer: string }>> {
  return (await topo.udpSockets('server', pid)).filter((s) => s.peer === SERVER_TARGET);
}

/** Kernel segments sent by the tunnel's own TCP sockets (ss segs_out), per namespace. */
export async function tunnelSocketSegsOut(topo: Topology): Promise<{ client: number; server: number; sockets: number }> {
  const inRange = (addr: string) => {
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    return port >= PORT_MIN && port <= PORT_MAX;
  };
  const c = (await topo.tcpSockets('client')).filter((s) => s.state !== 'LISTEN' && inRange(s.peer));
  const s = (await topo.tcpSockets('server')).filter((x) => x.state !== 'LISTEN' && inRange(x.local));
  return { client: c.reduce((a, x) => a + x.segsOut, 0), server: s.reduce((a, x) => a + x.segsOut, 0), sockets: c.length + s.length };
}
