// Active probing (issue 7): a censor connects to a server port and speaks HTTP, or sends random
// bytes. Without --decoy the server must close the connection within 5 s like a server that did not
// understand the request (curl: empty reply), never leave it hanging (a black hole no ordinary server
// is). With --decoy=HOST:PORT the prober gets the decoy's own answers. Either way the tunnel's echo
// flow keeps running: no reconnect, no gap over 1 s.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as crypto from 'crypto';
import { ADDR, Topology } from '../lib/netns';
import { pollUntil, Proc, sleep } from '../lib/proc';
import { LOG, linesAbout, linesMatching, PORT_MAX, PORT_MIN, RsockOptions, startServer, startTunnel } from '../lib/rsock';
import { EchoFlow, echoFlowResult, startEchoFlow, startUdpEcho, untilEcho } from '../lib/traffic';
import { liveTuples } from '../lib/capture';
import { curlGet, tcpPoke } from '../lib/attack';

const DECOY = '127.0.0.1:8080';
const CONNS = PORT_MAX - PORT_MIN + 1;
const opts: RsockOptions = { keepalive: 2 };

const topo = new Topology();
const page = `<html><body>decoy page ${topo.id}</body></html>`;
/** Random bytes, the same for the probe through rsock and the probe straight at the decoy. */
const junk = crypto.randomBytes(300);
let server: Proc;
let client: Proc;

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  const web = topo.spawnHelper('server', 'http-page.js', ['--listen', DECOY, '--body', page], 'decoy-web');
  await web.waitFor(/"ready"/, 5000);
  ({ server, client } = await startTunnel(topo, { server: opts, client: opts }));
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

/** Runs `probe` while an echo flow crosses the tunnel; then checks the tunnel was not disturbed. */
async function whileTunnelRuns(what: string, probe: () => Promise<void>): Promise<void> {
  await pollUntil(async () => (await liveTuples(topo)).length >= CONNS, 20_000, 200);
  // The tunnel's connections as the server names them; the server may log the probers' own connections.
  const real = (await liveTuples(topo)).map((t) => `${t.natIp}:${t.natPort}`);
  const cMark = client.mark();
  const sMark = server.mark();
  const flow: EchoFlow = startEchoFlow(topo, { count: 1500, rate: 100, min: 64, max: 600, waitMs: 2000 }, `echo-during-${what}`);
  let probeError: unknown;
  try {
    await sleep(500);
    await probe();
  } catch (e) {
    probeError = e;
  }
  // The flow's own length bounds the wait; stop it early when the probe already failed.
  if (probeError) await flow.proc.stop();
  const res = probeError ? undefined : await echoFlowResult(flow);
  const down = linesMatching(client, LOG.down, cMark);
  const closed = linesAbout(server, LOG.closed, real, sMark);
  if (res) console.log(`probe ${what}: tunnel meanwhile: echo ${res.received}/${res.sent}, longest gap ${res.maxGapMs} ms; client "down" ${down.length}, server "closed" ${closed.length}`);
  if (probeError) throw probeError;
  assert.deepEqual(down, [], `${what}: the client lost connections while probed`);
  assert.deepEqual(closed, [], `${what}: the server closed tunnel connections while probed`);
  assert.equal(res!.bad, 0);
  assert.ok(res!.maxGapMs <= 1000, `${what}: the echo flow stalled for ${res!.maxGapMs} ms`);
  assert.ok(res!.ratio >= 0.99, `${what}: only ${res!.received}/${res!.sent} echoed while probed`);
}

const url = (port: number) => `http://${ADDR.server}:${port}/`;

test('no decoy: curl to a server port is closed within 5 s (empty reply), not left hanging', { timeout: 90_000 }, topo.guard(async () => {
  await whileTunnelRuns('curl-no-decoy', async () => {
    for (const port of [PORT_MIN, PORT_MAX]) {
      const r = await curlGet(topo, 'client', url(port), 10);
      console.log(`probe curl ${url(port)} without decoy: exit ${r.exit} after ${r.ms} ms, status ${r.status}, ${r.body.length} B body; ${r.stderr}`);
      assert.notEqual(r.exit, 28, `curl timed out after ${r.ms} ms: the server port is a black hole`);
      assert.ok(r.exit === 52 || r.exit === 56, `curl exit ${r.exit}: expected the connection closed by the server (52 empty reply, 56 reset)`);
      assert.ok(r.ms < 5000, `the probe's connection was closed only after ${r.ms} ms`);
      assert.equal(r.exit, 52, 'closed with a reset: a server that did not understand the request closes with a FIN (curl: empty reply)');
      assert.equal(r.body, '', 'no decoy: the prober must get no bytes');
    }
  });
}));

test('no decoy: a prober sending random bytes is closed within 5 s and gets nothing back', { timeout: 90_000 }, topo.guard(async () => {
  await whileTunnelRuns('junk-no-decoy', async () => {
    const r = await tcpPoke(topo, 'client', `${ADDR.server}:${PORT_MIN + 1}`, [junk], { holdMs: 8000 });
    console.log(`probe random bytes without decoy: connected ${r.connected}, received ${r.received} B (${r.head.slice(0, 32)}), ended ${r.ended} after ${r.endMs} ms`);
    assert.ok(r.connected, `the prober could not connect: ${r.error}`);
    assert.ok(r.ended === 'fin' || r.ended === 'reset', `the prober's connection was left ${r.ended} for ${r.endMs < 0 ? '8000+' : r.endMs} ms (black hole)`);
    assert.ok(r.endMs < 5000, `closed only after ${r.endMs} ms`);
    assert.equal(r.received, 0, `the prober got ${r.received} bytes back: ${r.head}`);
  });
}));

test('--decoy: curl gets the decoy\'s page (status and body), repeatedly, while the tunnel runs', { timeout: 110_000 }, topo.guard(async () => {
  await server.stop();
  server = await startServer(topo, { ...opts, decoy: DECOY }, 'rsock-server-decoy');
  const back = await untilEcho(topo, 20_000);
  assert.ok(back.ok, 'the tunnel did not come back after the restart with --decoy');
  await whileTunnelRuns('curl-decoy', async () => {
    for (let i = 0; i < 4; i++) {
      const port = PORT_MIN + ((i * 3) % CONNS);
      const r = await curlGet(topo, 'client', url(port), 10);
      console.log(`probe curl ${url(port)} with decoy: exit ${r.exit} after ${r.ms} ms, status ${r.status}, body ${JSON.stringify(r.body.slice(0, 60))}`);
      assert.equal(r.exit, 0, `curl failed (exit ${r.exit} after ${r.ms} ms): ${r.stderr}`);
      assert.equal(r.status, 200);
      assert.equal(r.body, page, 'the body is not the decoy\'s page');
    }
  });
}));

test('--decoy: a prober sending random bytes gets exactly what the decoy itself answers', { timeout: 90_000 }, topo.guard(async () => {
  assert.ok(server.running && /decoy/.test(server.name), 'needs the server started with --decoy by the previous test');
  const direct = await tcpPoke(topo, 'server', DECOY, [junk], { holdMs: 5000 });
  await whileTunnelRuns('junk-decoy', async () => {
    const r = await tcpPoke(topo, 'client', `${ADDR.server}:${PORT_MIN + 2}`, [junk], { holdMs: 8000 });
    console.log(`probe random bytes with decoy: got ${r.received} B (${Buffer.from(r.head, 'hex').toString('latin1').split('\r\n')[0]}), ended ${r.ended} after ${r.endMs} ms; ` +
      `the decoy directly: ${direct.received} B, ended ${direct.ended}`);
    assert.ok(direct.received > 0, 'the decoy itself answered nothing: nothing to compare with');
    assert.equal(r.head, direct.head, 'the answer through the rsock port differs from the decoy\'s own');
    assert.equal(r.received, direct.received);
    assert.equal(r.ended, direct.ended, `the decoy ended the connection with ${direct.ended}, through rsock it was ${r.ended}`);
  });
}));
