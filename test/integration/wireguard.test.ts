// WireGuard with its default settings through the tunnel (issue 8): wireguard-go in the client and the
// server namespaces, MTU 1420 (so its packets of up to 1452 bytes are larger than one segment and
// travel as fragments), the client peer's Endpoint at rsock-client's --ludp, the server's WireGuard
// listening where rsock-server's --taddr points. Then ping with 1392-byte payloads and DF, and iperf3
// TCP both ways over the WireGuard addresses.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc } from '../lib/proc';
import { startTunnel } from '../lib/rsock';

const topo = new Topology();
const WG = { client: '10.99.0.1', server: '10.99.0.2', port: 9999 };
const wgProcs: Proc[] = [];
const ifName = (role: 'client' | 'server') => `wg${topo.id}${role[0]}`;

async function keypair(): Promise<{ priv: string; pub: string }> {
  const priv = (await topo.exec('client', ['wg', 'genkey'])).stdout.trim();
  const pub = (await topo.exec('client', ['wg', 'pubkey'], { input: priv + '\n' })).stdout.trim();
  return { priv, pub };
}

/** wireguard-go in the foreground (so its PID is ours to stop), configured with wg and ip. */
async function wgUp(role: 'client' | 'server', self: { priv: string }, peer: { pub: string }, addr: string, listen: number, endpoint?: string): Promise<void> {
  // wireguard-go's control socket is named after the interface in the shared /var/run: one name per role and run.
  const dev = ifName(role);
  const p = topo.spawn(role, ['env', 'WG_PROCESS_FOREGROUND=1', 'wireguard-go', dev], { name: `wireguard-go-${role}` });
  wgProcs.push(p);
  for (let i = 0; i < 50; i++) {
    if ((await topo.exec(role, ['ip', 'link', 'show', dev], { allowFail: true })).code === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await topo.exec(role, ['sh', '-c', `umask 077; printf '%s' '${self.priv}' > /tmp/rskwg-${topo.id}-${role}.key`]);
  const set = ['wg', 'set', dev, 'private-key', `/tmp/rskwg-${topo.id}-${role}.key`, 'listen-port', String(listen),
    'peer', peer.pub, 'allowed-ips', '10.99.0.0/24', ...(endpoint ? ['endpoint', endpoint, 'persistent-keepalive', '5'] : [])];
  await topo.exec(role, set);
  await topo.exec(role, ['rm', '-f', `/tmp/rskwg-${topo.id}-${role}.key`]);
  await topo.exec(role, ['ip', 'addr', 'add', `${addr}/24`, 'dev', dev]);
  await topo.exec(role, ['ip', 'link', 'set', dev, 'up']);
}

before(topo.guard(async () => {
  await topo.up();
  await startTunnel(topo);
  const c = await keypair();
  const s = await keypair();
  await wgUp('server', s, c, WG.server, WG.port);
  await wgUp('client', c, s, WG.client, 51820, '127.0.0.1:30000');
  const mtu = (await topo.exec('client', ['cat', `/sys/class/net/${ifName('client')}/mtu`])).stdout.trim();
  assert.equal(mtu, '1420', 'WireGuard runs at its default MTU');
}));
after(async () => {
  for (const p of wgProcs) await p.stop();
  await topo.destroy();
});

test('ping -s 1392 -M do through WireGuard: 1420-byte packets, every one answered', { timeout: 60_000 }, topo.guard(async () => {
  await topo.exec('client', ['ping', '-c', '3', '-W', '2', WG.server], { allowFail: true, timeoutMs: 15_000 }); // handshake
  const r = await topo.exec('client', ['ping', '-c', '10', '-i', '0.2', '-W', '2', '-s', '1392', '-M', 'do', WG.server], { allowFail: true, timeoutMs: 20_000 });
  console.log(`wireguard ping: ${r.stdout.split('\n').filter((l) => /transmitted|rtt/.test(l)).join('; ')}`);
  assert.match(r.stdout, /10 packets transmitted, 10 received/);
}));

for (const reverse of [false, true]) {
  test(`iperf3 TCP ${reverse ? 'server -> client' : 'client -> server'} through WireGuard at MTU 1420`, { timeout: 60_000 }, topo.guard(async () => {
    const srv = topo.spawn('server', ['iperf3', '-s', '-1', '-B', WG.server, '-p', '5201'], { name: 'iperf3-server' });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const r = await topo.exec('client', ['iperf3', '-c', WG.server, '-p', '5201', '-t', '3', '-J', ...(reverse ? ['-R'] : [])], { timeoutMs: 30_000 });
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      const mbps = j.end.sum_received.bits_per_second / 1e6;
      console.log(`wireguard iperf3 ${reverse ? 'down' : 'up'}: ${mbps.toFixed(1)} Mbit/s`);
      assert.ok(mbps > 5, `${mbps.toFixed(1)} Mbit/s`);
    } finally {
      await srv.stop();
    }
  }));
}
