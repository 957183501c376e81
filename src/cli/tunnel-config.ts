// From resolved options to the tunnel's configuration: names resolved to addresses, devices chosen.
// Done once, in the main thread, so that every worker gets the same plain (cloneable) object.
import { hostPortText } from '../core/addr';
import { DEFAULT_KEY } from '../core/keys';
import type { ClientConfig } from '../tunnel/client';
import type { DecoyTarget } from '../tunnel/decoy';
import type { ServerConfig } from '../tunnel/server';
import { defaultDevice, routeTo } from '../util/route';
import type { ClientOptions, ServerOptions } from './options';
import { familyOf, resolveIp } from './resolve';

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

export async function clientConfig(o: ClientOptions): Promise<ClientConfig> {
  const serverIp = await resolveIp(o.serverHost, '--taddr', familyOf(o.lcapIp));
  return {
    ...shared(o),
    serverIp,
    connsPerPort: o.conns,
    ludpHost: o.ludpHost,
    ludpPort: o.ludpPort,
    // Local endpoints resolve here; targets are named as the server knows them, and it resolves its --allow.
    forwards: await Promise.all(o.forwards.map(async (f) => ({ ...f, localHost: await resolveIp(f.localHost, `--forward ${f.localHost}:${f.localPort}`) }))),
    device: o.dev ?? routeTo(serverIp).dev,
    localIp: o.lcapIp,
    sni: o.sni,
  };
}

export async function serverConfig(o: ServerOptions): Promise<{ cfg: ServerConfig; decoy?: DecoyTarget }> {
  const targetIp = await resolveIp(o.targetHost, '--taddr');
  const decoy = o.decoy ? { host: await resolveIp(o.decoy.host, '--decoy'), port: o.decoy.port } : undefined;
  const cfg: ServerConfig = {
    ...shared(o),
    targetHost: targetIp,
    targetPort: o.targetPort,
    targetName: familyOf(o.targetHost) ? undefined : o.targetHost,
    allow: await Promise.all(o.allow.map(async (a) => ({ host: a.host, ip: await resolveIp(a.host, '--allow'), port: a.port }))),
    device: o.dev ?? defaultDevice() ?? 'any',
    listenIp: o.lcapIp,
    decoy: decoy ? hostPortText(decoy.host, decoy.port) : null,
  };
  return { cfg, decoy };
}
