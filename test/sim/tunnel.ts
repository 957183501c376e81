// A client host and a server host on the simulated network, with the real RsockClient and RsockServer
// on them, an echo service behind the server and app sockets on the client: the in-memory tunnel.
import type { Crypto } from '../../src/core/crypto';
import type { WireMode } from '../../src/core/frame';
import type { TransportType } from '../../src/core/udp-link';
import { portClass } from '../../src/core/partition';
import { RsockClient, ClientConfig } from '../../src/tunnel/client';
import { RsockServer, ServerConfig } from '../../src/tunnel/server';
import { Level, Logger } from '../../src/util/log';
import { simIp } from './addr';
import { SimIo } from './io';
import { SimHost, SimNetwork, UdpApp } from './network';

export const CLIENT_IP = '10.9.0.1';
export const SERVER_IP = '10.9.0.2';
export const CLIENT_IP6 = '2001:db8:9::1';
export const SERVER_IP6 = '2001:db8:9::2';
export const TARGET_PORT = 9999;
export const LUDP_PORT = 30000;

export interface SimTunnelOptions {
  ports?: number[];
  connsPerPort?: number;
  durationMs?: number;
  keepaliveMs?: number;
  key?: string;
  /** Default: the programs' own defaults, --obfs=tls --crypt=none. */
  mode?: WireMode;
  decoy?: string | null;
  /** --type of both ends; default tcp. */
  transport?: TransportType;
  /**
   * Everything over IPv6: the client dials SERVER_IP6, its --ludp and the server's target are [::1].
   * Both hosts keep their IPv4 addresses too (a dual-stack network).
   */
  ipv6?: boolean;
}

export class SimTunnel {
  readonly net = new SimNetwork();
  readonly clientHost: SimHost;
  readonly serverHost: SimHost;
  readonly echo: UdpApp;
  client!: RsockClient;
  server!: RsockServer;
  /** The server workers of startServerWorkers(), each its own RsockServer on its class of ports. */
  servers: RsockServer[] = [];
  clientIo!: SimIo;
  serverIo!: SimIo;
  readonly log = new Logger((process.env.RSOCK_SIM_LOG as Level) ?? 'error');
  private readonly serverCfg: ServerConfig;
  private readonly clientCfg: ClientConfig;
  /** Where apps send: 127.0.0.1 or ::1. */
  readonly ludpHost: string;

  constructor(private readonly crypto: Crypto, o: SimTunnelOptions = {}) {
    this.clientHost = this.net.host('client', simIp(CLIENT_IP), simIp(CLIENT_IP6));
    this.serverHost = this.net.host('server', simIp(SERVER_IP), simIp(SERVER_IP6));
    this.ludpHost = o.ipv6 ? '::1' : '127.0.0.1';
    this.echo = this.serverHost.udpSocket(TARGET_PORT);
    const loopback = this.ludpHost;
    this.echo.echo = true;
    const mode = o.mode ?? { obfs: 'tls', aead: false };
    const common = { key: o.key ?? 'sim-key', mode, durationMs: o.durationMs ?? 30000, keepaliveMs: o.keepaliveMs ?? 2000, transport: o.transport ?? 'tcp', ports: o.ports ?? [10001, 10002, 10003], device: 'sim0' };
    this.serverCfg = { ...common, targetHost: loopback, targetPort: TARGET_PORT, listenIp: '', decoy: o.decoy ?? null };
    this.clientCfg = { ...common, serverIp: o.ipv6 ? SERVER_IP6 : SERVER_IP, connsPerPort: o.connsPerPort ?? 1, ludpHost: loopback, ludpPort: LUDP_PORT, localIp: '', sni: 'sim.example' };
  }

  startServer(cfg: Partial<ServerConfig> = {}): RsockServer {
    this.serverIo = new SimIo(this.serverHost, this.crypto);
    this.server = new RsockServer({ ...this.serverCfg, ...cfg }, this.log, this.serverIo);
    this.server.start();
    return this.server;
  }

  /** A server with `n` workers as rsock-server --workers=n runs them: class k owns the ports whose index is k mod n. */
  startServerWorkers(n: number): RsockServer[] {
    this.servers = Array.from({ length: n }, (_, k) => {
      const io = new SimIo(this.serverHost, this.crypto);
      const ports = this.serverCfg.ports.filter((_p, i) => portClass(i, n) === k);
      const s = new RsockServer({ ...this.serverCfg, ports, partition: { count: n, index: k } }, this.log, io);
      s.start();
      return s;
    });
    this.server = this.servers[0];
    return this.servers;
  }

  startClient(cfg: Partial<ClientConfig> = {}): RsockClient {
    this.clientIo = new SimIo(this.clientHost, this.crypto);
    this.client = new RsockClient({ ...this.clientCfg, ...cfg }, this.log, this.clientIo);
    void this.client.start();
    return this.client;
  }

  /** Both sides started and every client connection live, within `maxMs` of virtual time. */
  up(maxMs = 2000): this {
    this.startServer();
    this.startClient();
    const n = this.clientCfg.ports.length * this.clientCfg.connsPerPort;
    if (this.net.time.runUntil(() => this.client.liveConnections === n, maxMs) < 0) {
      throw new Error(`only ${this.client.liveConnections}/${n} connections live after ${maxMs} ms`);
    }
    return this;
  }

  /** An app on the client host: its datagrams to --ludp are one flow. */
  app(): UdpApp {
    return this.clientHost.udpSocket();
  }

  send(app: UdpApp, data: Buffer): void {
    app.send(simIp(this.ludpHost), LUDP_PORT, data);
  }

  run(ms: number): void {
    this.net.time.run(ms);
  }

  async stop(): Promise<void> {
    await this.client?.stop();
    for (const s of this.servers.length ? this.servers : [this.server]) await s?.stop();
    this.run(10);
  }
}
