// `sudo npm run demo`: builds the client/router/server namespaces of the integration tests, starts
// rsock-server and rsock-client, sends UDP datagrams through the tunnel and shows what crossed the
// router. Cleans up on success, failure and Ctrl-C (the harness's exit and signal hooks).
import { ADDR, Topology } from './netns';
import { CLIENT_LUDP, LOG, PORTS, SERVER_TARGET, startTunnel } from './rsock';
import { startUdpEcho, udpEcho, untilEcho } from './traffic';

const COUNT = Number(process.env.DEMO_COUNT ?? 20);

async function main(): Promise<number> {
  const topo = new Topology();
  const say = (s: string) => console.log(`demo: ${s}`);
  try {
    say(`creating namespaces ${topo.ns.client} -- ${topo.ns.router} -- ${topo.ns.server}`);
    await topo.up();
    say(`client ${ADDR.client} (no default route) -> router (masquerade, strict conntrack, INVALID and all UDP dropped) -> server ${ADDR.server}`);
    await startUdpEcho(topo);
    say(`UDP echo service on ${SERVER_TARGET} in the server namespace`);
    const { server, client } = await startTunnel(topo, { server: { keepalive: 2 }, client: { keepalive: 2 } });
    say(`rsock-server: ${server.output().split('\n').find((l) => LOG.ready.test(l))?.trim()}`);
    say(`rsock-client: ${client.output().split('\n').find((l) => LOG.ready.test(l))?.trim()}`);
    const first = await untilEcho(topo, 10_000);
    if (!first.ok) throw new Error('no echo through the tunnel within 10 s');
    const before = await topo.readNftCounters();
    const r = await udpEcho(topo, { count: COUNT, min: 16, max: 1200, rate: 20 });
    const after = await topo.readNftCounters();
    say(`sent ${r.sent} UDP datagrams (16..1200 bytes) to ${CLIENT_LUDP} in the client namespace`);
    say(`echoed back intact: ${r.received}/${r.sent}, corrupted: ${r.bad}, round trip p50 ${r.rttMs.p50} ms, max ${r.rttMs.max} ms`);
    say(`router forwarded TCP segments on ports ${PORTS}: client->server ${after.tcp_c2s.packets - before.tcp_c2s.packets}, ` +
      `server->client ${after.tcp_s2c.packets - before.tcp_s2c.packets} (since start: ${after.tcp_c2s.packets} / ${after.tcp_s2c.packets})`);
    say(`router drops: INVALID ${after.invalid_drops.packets}, UDP ${after.udp_drops.packets}`);
    const ok = r.ratio >= 0.9 && r.bad === 0 && after.invalid_drops.packets === 0;
    say(ok ? 'OK' : 'FAILED');
    return ok ? 0 : 1;
  } catch (e) {
    console.error(`demo: FAILED: ${e instanceof Error ? e.message : e}`);
    topo.dumpLogs(20);
    return 1;
  } finally {
    say('cleaning up');
    await topo.destroy();
  }
}

main().then((code) => process.exit(code));
