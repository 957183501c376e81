// --workers: the flag's validation and help, the caps (workers-option.ts), the split of --conns, and
// the main thread's sum of its workers' status and counters (status-merge.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientOptions, ServerOptions, buildCommand } from '../../src/cli/options';
import { connsOfWorker, DEFAULT_WORKERS, effectiveWorkers, localPortRanges, WorkersContext } from '../../src/cli/workers-option';
import { captureFilter } from '../../src/io/native-io';
import { mergeStatus, sumStats } from '../../src/ops/status-merge';
import type { Status } from '../../src/ops/status';
import { parseFlags } from '../lib/parse-flags';

test('--workers: a whole number from 1 to 64 or auto; anything else is one line naming the flag', () => {
  assert.equal((parseFlags('server', ['--taddr=127.0.0.1:9', '--workers=2']) as ServerOptions).workers, 2);
  assert.equal((parseFlags('client', ['--taddr=10.0.0.1', '--workers', 'auto']) as ClientOptions).workers, 'auto');
  const d = parseFlags('client', ['--taddr=10.0.0.1']) as ClientOptions;
  assert.equal(d.workers, DEFAULT_WORKERS);
  assert.equal(d.workersGiven, false);
  assert.equal((parseFlags('client', ['--taddr=10.0.0.1', '--workers=1']) as ClientOptions).workersGiven, true);
  for (const bad of ['0', '-1', '1.5', 'two', '', '65']) {
    assert.throws(() => parseFlags('server', ['--taddr=127.0.0.1:9', `--workers=${bad}`]), /--workers: ".*" must be a whole number from 1 to 64, or auto/, bad);
  }
  for (const kind of ['client', 'server'] as const) assert.match(buildCommand(kind).helpInformation(), /--workers <n\|auto>\s+worker threads/);
});

const ctx = (o: Partial<WorkersContext>): WorkersContext => ({ kind: 'server', ports: [1, 2, 3], conns: 1, transport: 'tcp', explicit: true, ...o });

test('how many workers run: capped by the ports (server) or --conns (client), one for the UDP transport', () => {
  assert.deepEqual(effectiveWorkers(2, ctx({})), { count: 2, why: null });
  assert.deepEqual(effectiveWorkers(1, ctx({})), { count: 1, why: null });
  const s = effectiveWorkers(8, ctx({}));
  assert.equal(s.count, 3);
  assert.match(s.why!, /--workers=8: running 3, one per listening port/);
  const c = effectiveWorkers(2, ctx({ kind: 'client', conns: 1 }));
  assert.equal(c.count, 1);
  assert.match(c.why!, /--conns=1 \(give --conns=2\)/);
  assert.equal(effectiveWorkers(2, ctx({ kind: 'client', conns: 4 })).count, 2);
  assert.match(effectiveWorkers(2, ctx({ transport: 'all' })).why!, /running 1, because the UDP transport \(--type=all\)/);
  assert.deepEqual(effectiveWorkers('auto', ctx({}), 2), { count: 1, why: null }, 'auto: a core is left to the kernel and the apps');
  assert.deepEqual(effectiveWorkers('auto', ctx({}), 1), { count: 1, why: null });
  assert.deepEqual(effectiveWorkers('auto', ctx({}), 3), { count: 2, why: null });
  assert.deepEqual(effectiveWorkers('auto', ctx({ ports: [1, 2, 3, 4, 5, 6, 7, 8] }), 8), { count: 7, why: null });
  assert.deepEqual(effectiveWorkers('auto', ctx({ kind: 'client', conns: 1 }), 8), { count: 1, why: null }, 'the default --conns=1 keeps a client on one worker');
  assert.deepEqual(effectiveWorkers('auto', ctx({ ports: [1] }), 8), { count: 1, why: null }, 'auto is capped without a word');
  assert.equal(effectiveWorkers(4, ctx({ explicit: false })).why, null, 'a capped default says nothing');
});

test('--conns split over client workers: every connection once, as evenly as it goes', () => {
  assert.deepEqual([0, 1].map((w) => connsOfWorker(2, w, 2)), [1, 1]);
  assert.deepEqual([0, 1].map((w) => connsOfWorker(5, w, 2)), [3, 2]);
  assert.deepEqual([0, 1, 2].map((w) => connsOfWorker(3, w, 3)), [1, 1, 1]);
});

test("client workers dial from disjoint parts of the kernel's ephemeral range, which their captures name", () => {
  assert.deepEqual(localPortRanges(2, '32768\t60999\n'), [[32768, 46883], [46884, 60999]]);
  assert.deepEqual(localPortRanges(3, '10000 10299'), [[10000, 10099], [10100, 10199], [10200, 10299]]);
  assert.deepEqual(localPortRanges(2, 'garbage'), [[32768, 46883], [46884, 60999]], 'an unreadable range: Linux default');
  const f = captureFilter({ device: 'eth0', ports: [10001, 10002], portSide: 'src', fromHost: '10.0.0.2', localPorts: [46884, 60999] });
  assert.match(f, / and src host 10\.0\.0\.2 and dst portrange 46884-60999$/);
  assert.doesNotMatch(captureFilter({ device: 'eth0', ports: [1], portSide: 'src' }), /portrange/);
});

const part = (over: Partial<Status>): Status => ({
  program: 'rsock-server', version: '0', protocol: 2, pid: 1, startTime: 100, uptimeSec: 5,
  datagrams: { in: 1, out: 2 }, bytes: { in: 10, out: 20 },
  drops: { forged: 1, replayed: 0, malformed: 0, too_big: 0, no_flow: 0, no_connection: 2, refused: 0 }, captureDropped: 1,
  reconnects: { reset: 1, fin: 0, close: 0, silence: 0, dial_failure: 0, handshake: 0 },
  connections: [{ port: 1, state: 'LIVE', peer: 'a', transport: 'tcp', ageSec: 1, rttMs: null, txFrames: 0, rxFrames: 0 }],
  flows: [{ id: 1, app: 'x', target: 't', idleSec: 3, in: 1, out: 1 }], flowCount: 1, sessions: 1, ...over,
});

test('the process status is the sum of its workers', () => {
  const m = mergeStatus([part({}), part({ uptimeSec: 6, flows: [{ id: 2, app: 'y', target: 't', idleSec: 0, in: 0, out: 0 }] })]);
  assert.deepEqual(m.datagrams, { in: 2, out: 4 });
  assert.deepEqual(m.bytes, { in: 20, out: 40 });
  assert.equal(m.drops.forged, 2);
  assert.equal(m.drops.no_connection, 4);
  assert.equal(m.reconnects.reset, 2);
  assert.equal(m.captureDropped, 2);
  assert.equal(m.connections.length, 2);
  assert.deepEqual(m.flows.map((f) => f.id), [2, 1], 'the most recently active first');
  assert.equal(m.flowCount, 2);
  assert.equal(m.sessions, 2);
  assert.equal(m.uptimeSec, 6);
  assert.equal(mergeStatus([part({ program: 'rsock-client' }), part({ program: 'rsock-client' })]).sessions, 1, 'one client process is one client');
  assert.deepEqual(sumStats([{ a: 1, b: 2 }, { a: 3, c: 4 }]), { a: 4, b: 2, c: 4 });
});
