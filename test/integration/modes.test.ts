// The wire modes as a user runs them: --crypt=aead and --obfs=none carry traffic through the strict
// router, and ends that disagree on --obfs or --crypt do not connect and say why, on both sides.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { clientArgs, RsockOptions, startServer, startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const topo = new Topology();
before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
}));
after(() => topo.destroy());

for (const mode of [{ crypt: 'aead' }, { obfs: 'none' }, { obfs: 'none', crypt: 'aead' }] as RsockOptions[]) {
  const name = Object.entries(mode).map(([k, v]) => `--${k}=${v}`).join(' ');
  test(`${name}: datagrams are echoed through the tunnel`, { timeout: 60_000 }, topo.guard(async () => {
    const { server, client } = await startTunnel(topo, { server: mode, client: mode });
    try {
      assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo within 10 s');
      const r = await udpEcho(topo, { count: 200 });
      assert.ok(r.received >= 198, `${r.received}/200 echoed`);
    } finally {
      await client.stop();
      await server.stop();
    }
  }));
}

for (const [srv, cli, why] of [
  [{}, { obfs: 'none' }, /an --obfs=none greeting, while this end runs --obfs=tls/],
  [{ crypt: 'aead' }, {}, /a TLS ClientHello that does not authenticate/],
] as Array<[RsockOptions, RsockOptions, RegExp]>) {
  test(`server ${JSON.stringify(srv)} vs client ${JSON.stringify(cli)}: no connection, and both logs say why`, { timeout: 60_000 }, topo.guard(async () => {
    const server = await startServer(topo, srv);
    const client = topo.spawn('client', clientArgs(topo, cli), { name: 'rsock-client' });
    try {
      const line = await server.waitFor(/probe from/, 10_000);
      assert.match(line, why);
      assert.match(line, /--key, --obfs and --crypt/);
      await client.waitFor(/--key, --obfs (and|or) --crypt/, 15_000);
      assert.doesNotMatch(client.output(), /connection \d+ to port \d+ up/, 'no connection came up');
    } finally {
      await client.stop();
      await server.stop();
    }
  }));
}
