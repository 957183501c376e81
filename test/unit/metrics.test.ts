// --metrics and `status`: the Status object as Prometheus text (checked by Prometheus' own promtool)
// and JSON over HTTP, and the table the status command prints from two samples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as http from 'http';
import { statusCommand } from '../../src/cli/status-command';
import { startMetricsServer } from '../../src/ops/metrics-server';
import { DROP_CAUSES, prometheusText, RECONNECT_CAUSES, Status } from '../../src/ops/status';
import { renderStatus } from '../../src/ops/status-table';

function sample(over: Partial<Status> = {}): Status {
  const zero = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  return {
    program: 'rsock-client', version: '0.1.0', protocol: 2, pid: 4242, startTime: 1764662400, uptimeSec: 3725,
    datagrams: { in: 1000, out: 990 }, bytes: { in: 1_200_000, out: 1_188_000 },
    drops: { ...zero(DROP_CAUSES), forged: 3 }, captureDropped: 1, reconnects: { ...zero(RECONNECT_CAUSES), silence: 2 },
    connections: [
      { port: 10001, state: 'LIVE', peer: '203.0.113.7', transport: 'tcp', ageSec: 3700, rttMs: 0.42, txFrames: 500, rxFrames: 495 },
      { port: 10002, state: 'BACKOFF', peer: '203.0.113.7', transport: 'tcp', ageSec: 2, rttMs: null, txFrames: 0, rxFrames: 0 },
    ],
    flows: [{ id: 1, app: '127.0.0.1:40000', target: '127.0.0.1:9999', idleSec: 0, in: 1000, out: 990 }],
    flowCount: 1, sessions: 1, ...over,
  };
}

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the Prometheus text passes promtool check metrics and carries every figure', (t) => {
  const text = prometheusText(sample());
  const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (promtool.error) t.diagnostic('promtool is not installed (Debian: prometheus); format checked by the assertions below only');
  else assert.equal(promtool.status, 0, `promtool: ${promtool.stdout}${promtool.stderr}`), assert.equal((promtool.stdout + promtool.stderr).trim(), '');
  for (const line of [
    'rsock_datagrams_total{direction="in"} 1000', 'rsock_datagrams_total{direction="out"} 990', 'rsock_bytes_total{direction="in"} 1200000',
    'rsock_dropped_total{cause="forged"} 3', 'rsock_capture_dropped_packets_total 1', 'rsock_reconnects_total{cause="silence"} 2',
    'rsock_connections{state="live"} 1', 'rsock_connections{state="backoff"} 1', 'rsock_connections{state="dialing"} 0', 'rsock_flows 1',
    'rsock_info{program="rsock-client",version="0.1.0",protocol="2"} 1', '# TYPE rsock_datagrams_total counter', '# TYPE rsock_flows gauge',
  ]) assert.ok(text.split('\n').includes(line), `missing: ${line}`);
  const server = prometheusText(sample({ program: 'rsock-server', connections: [], sessions: 3 }));
  assert.ok(!server.includes('rsock_reconnects_total'), 'the server has no reconnects');
  assert.match(server, /^rsock_sessions 3$/m);
  assert.match(server, /^rsock_connections\{state="live"\} 0$/m);
});

test('the metrics server answers /metrics and /status, 404 elsewhere, 405 for POST, and says when it cannot listen', async () => {
  let s = sample();
  const m = await startMetricsServer('127.0.0.1', 0, () => s);
  try {
    const metrics = await get(`http://${m.address}/metrics`);
    assert.equal(metrics.status, 200);
    assert.equal(metrics.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(metrics.body, prometheusText(s));
    s = sample({ datagrams: { in: 5, out: 6 } });
    const status = await get(`http://${m.address}/status`);
    assert.equal(status.type, 'application/json');
    assert.deepEqual(JSON.parse(status.body), s, 'each request reads the status afresh');
    assert.equal((await get(`http://${m.address}/other`)).status, 404);
    assert.equal((await get(`http://${m.address}/metrics`, 'POST')).status, 405);
    const port = Number(m.address.split(':').pop());
    await assert.rejects(startMetricsServer('127.0.0.1', port, () => s), /--metrics: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  } finally {
    await m.close();
  }
});

test('the status table lists every connection with its state, age and RTT, rates from two samples, and the flows', () => {
  const before = sample();
  const after = sample({
    uptimeSec: 3727, datagrams: { in: 1100, out: 1090 },
    connections: before.connections.map((c) => (c.state === 'LIVE' ? { ...c, txFrames: c.txFrames + 50, rxFrames: c.rxFrames + 40 } : c)),
    flows: [{ ...before.flows[0], in: 1100, out: 1090 }],
  });
  const text = renderStatus(after, before, 2);
  assert.match(text, /^rsock-client 0\.1\.0 \(wire protocol 2\), pid 4242, up 1h02m$/m);
  assert.match(text, /datagrams: 1,100 in \(50\.0\/s\), 1,090 out \(50\.0\/s\)/);
  assert.match(text, /dropped: forged 3, .*; capture 1/);
  assert.match(text, /reconnects: .*silence 2/);
  assert.match(text, /connections: 1 of 2 live/);
  assert.match(text, /^10001 +tcp +203\.0\.113\.7 +LIVE +1h01m +0\.4 ms +20\.0 +25\.0$/m);
  assert.match(text, /^10002 +tcp +203\.0\.113\.7 +BACKOFF +2s +- +0\.0 +0\.0$/m);
  assert.match(text, /^ +1 +127\.0\.0\.1:40000 +127\.0\.0\.1:9999 +0s +50\.0 +50\.0 +1,100 +1,090$/m);
  const first = renderStatus(after, null, 0);
  assert.match(first, /^10001 +tcp +203\.0\.113\.7 +LIVE +1h01m +0\.4 ms +- +-$/m, 'no rates without a previous sample');
  assert.match(renderStatus(after, sample({ pid: 1 }), 1), /\(-\/s\)/, 'a restarted process (new pid) has no rates');
});

test('`status --metrics` prints the table of the process at that address, and a clear error when nothing answers', async () => {
  const m = await startMetricsServer('127.0.0.1', 0, () => sample());
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (x: string) => { out.push(x); }, err: (x: string) => { err.push(x); } };
  const ok = await statusCommand('client', ['--metrics', m.address], io);
  await m.close();
  const bad = await statusCommand('client', ['--metrics', m.address], io);
  const badArg = await statusCommand('client', ['--metrics', 'nope'], io);
  assert.equal(ok, 0);
  assert.match(out.join(''), /connections: 1 of 2 live\n/);
  assert.equal(bad, 1);
  assert.match(err.join(''), new RegExp(`cannot read http://${m.address.replace(/\./g, '\\.')}/status: ECONNREFUSED \\(is rsock running with --metrics=`));
  assert.equal(badArg, 2);
  assert.match(err.join(''), /--metrics: "nope" is not host:port/);
});
