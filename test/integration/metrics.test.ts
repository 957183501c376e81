// --metrics and `status` on the real programs (issue 9): after a known number of echoed datagrams,
// a scrape of either end shows at least that many in the right counters, Prometheus' promtool accepts
// the text, and `rsock-client status` / `rsock-server status` name every port with its state;
// `status --watch` redraws every second with counts that move, and stops on Ctrl-C.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { CLIENT_BIN, PORT_MAX, PORT_MIN, SERVER_BIN, startTunnel } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const CLIENT_METRICS = '127.0.0.1:9100';
const SERVER_METRICS = '127.0.0.1:9101';
const COUNT = 300;
const topo = new Topology();

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  await startTunnel(topo, { server: { extra: [`--metrics=${SERVER_METRICS}`] }, client: { extra: [`--metrics=${CLIENT_METRICS}`] } });
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo through the tunnel');
}));
after(() => topo.destroy());

async function scrape(role: 'client' | 'server', path: string): Promise<string> {
  const r = await topo.exec(role, ['curl', '-sS', '--max-time', '5', `http://${role === 'client' ? CLIENT_METRICS : SERVER_METRICS}${path}`]);
  return r.stdout;
}

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  assert.ok(line, `no ${series} in the scrape`);
  return Number(line.slice(series.length + 1));
}

test('a scrape after a known number of datagrams shows at least that many each way, on both ends', { timeout: 60_000 }, topo.guard(async () => {
  const before = { client: await scrape('client', '/metrics'), server: await scrape('server', '/metrics') };
  const r = await udpEcho(topo, { count: COUNT, rate: 300 });
  assert.equal(r.received, COUNT, `only ${r.received}/${COUNT} echoed`);
  await sleep(3000); // a keepalive round trip for the RTT column
  for (const role of ['client', 'server'] as const) {
    const text = await scrape(role, '/metrics');
    const promtool = await topo.exec(role, ['promtool', 'check', 'metrics'], { input: text, allowFail: true });
    assert.equal(promtool.code, 0, `promtool on the ${role}'s scrape: ${promtool.stdout}${promtool.stderr}`);
    for (const dir of ['in', 'out']) {
      const series = `rsock_datagrams_total{direction="${dir}"}`;
      const grew = value(text, series) - value(before[role], series);
      console.log(`metrics: rsock-${role} ${series} grew by ${grew} over ${COUNT} echoed datagrams`);
      assert.ok(grew >= COUNT, `rsock-${role}: ${series} grew by ${grew} < ${COUNT}`);
      assert.ok(value(text, `rsock_bytes_total{direction="${dir}"}`) >= COUNT * 16, 'bytes counted');
    }
    assert.equal(value(text, 'rsock_connections{state="live"}'), PORT_MAX - PORT_MIN + 1, `rsock-${role}: live connections`);
    assert.equal(value(text, 'rsock_dropped_total{cause="forged"}'), 0);
    assert.ok(value(text, 'rsock_flows') >= 1);
  }
  const status = JSON.parse(await scrape('client', '/status')) as { connections: Array<{ port: number; state: string; rttMs: number | null }> };
  assert.equal(status.connections.length, PORT_MAX - PORT_MIN + 1);
  for (const c of status.connections) assert.ok(c.state === 'LIVE' && c.rttMs !== null && c.rttMs >= 0 && c.rttMs < 1000, JSON.stringify(c));
}));

test('`status --metrics` prints every port with its state, on both programs', { timeout: 30_000 }, topo.guard(async () => {
  for (const [role, bin, addr] of [['client', CLIENT_BIN, CLIENT_METRICS], ['server', SERVER_BIN, SERVER_METRICS]] as const) {
    const r = await topo.exec(role, [process.execPath, bin, 'status', `--metrics=${addr}`], { allowFail: true, timeoutMs: 10_000 });
    assert.equal(r.code, 0, `rsock-${role} status: ${r.stderr}`);
    console.log(`metrics: rsock-${role} status:\n${r.stdout}`);
    for (let p = PORT_MIN; p <= PORT_MAX; p++) assert.match(r.stdout, new RegExp(`^${p} +tcp +\\S+ +LIVE `, 'm'), `port ${p} missing or not LIVE`);
    assert.match(r.stdout, new RegExp(`^rsock-${role} \\S+ \\(wire protocol 2\\), pid \\d+, up `, 'm'));
  }
  const bad = await topo.exec('client', [process.execPath, CLIENT_BIN, 'status', '--metrics=127.0.0.1:9'], { allowFail: true, timeoutMs: 10_000 });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /cannot read http:\/\/127\.0\.0\.1:9\/status: ECONNREFUSED/);
}));

test('`status --watch` redraws about once a second while traffic moves the counts, and exits 0 on SIGINT', { timeout: 40_000 }, topo.guard(async () => {
  const watch: Proc = topo.spawn('client', [process.execPath, CLIENT_BIN, 'status', `--metrics=${CLIENT_METRICS}`, '--watch'], { name: 'status-watch' });
  const t0 = Date.now();
  const traffic = udpEcho(topo, { count: 1500, rate: 300 });
  await sleep(4500);
  await traffic;
  const tables = watch.output().split(/^rsock-client \S+ \(wire protocol 2\)/m).slice(1);
  console.log(`metrics: status --watch drew ${tables.length} tables in ${Date.now() - t0} ms; the last:\n${tables.at(-1)}`);
  assert.ok(watch.running, `status --watch exited early (code ${watch.exitCode}): ${watch.output()}`);
  assert.ok(tables.length >= 3 && tables.length <= 6, `${tables.length} tables in about 4.5 s`);
  for (const t of tables) for (let p = PORT_MIN; p <= PORT_MAX; p++) assert.match(t, new RegExp(`^${p} +tcp +\\S+ +LIVE `, 'm'));
  // The totals line counts datagrams: it must change from one redraw to the next while traffic flows.
  const totals = tables.map((t) => t.split('\n').filter((l) => /datagram/i.test(l)).join('|'));
  assert.ok(new Set(totals).size >= 2, `the counts never moved between redraws: ${totals.join(' // ')}`);
  watch.signal('SIGINT');
  assert.ok(await watch.waitExit(3000), 'status --watch did not stop on SIGINT');
  assert.ok(watch.exitCode === 0 || watch.exitSignal === 'SIGINT', `status --watch ended with code ${watch.exitCode} signal ${watch.exitSignal}`);
}));
