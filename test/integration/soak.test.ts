// Soak (issue 9, the short version): 4 minutes at 5,000 datagrams/s over 200 app flows that come and
// go (20 replaced every second) with --duration=10 on both ends, so flows expire all the time. At
// least 99.9 % of the datagrams must come back (a round trip, so both directions count), none wrong,
// and the RSS and open file descriptors of both rsock processes must stay within 10 % of their level
// after the first minute: no leak of memory, sockets or flows.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import { Topology } from '../lib/netns';
import { Proc, sleep } from '../lib/proc';
import { statusMiB } from '../lib/procstat';
import { CLIENT_LUDP, startTunnel } from '../lib/rsock';
import { startUdpEcho, untilEcho } from '../lib/traffic';

const SECONDS = 240;
const RATE = 5000;
const FLOWS = 200;
const SETTLED_S = 60;
const topo = new Topology();
let tunnel: { server: Proc; client: Proc };

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  tunnel = await startTunnel(topo, { server: { duration: 10 }, client: { duration: 10 } });
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo through the tunnel');
}));
after(() => topo.destroy());

interface Sample { t: number; rss: number; fds: number }

function sample(pid: number, t: number): Sample {
  return { t, rss: statusMiB(pid, 'VmRSS') ?? NaN, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

test(`${SECONDS / 60} minutes at ${RATE} datagrams/s over ${FLOWS} changing flows: >= 99.9 % delivered, no growth after the first minute`,
  { timeout: (SECONDS + 60) * 1000 }, topo.guard(async () => {
    const load = topo.spawnHelper('client', 'soak-load.js', ['--to', CLIENT_LUDP, '--flows', String(FLOWS), '--rate', String(RATE),
      '--seconds', String(SECONDS), '--churn', '20', '--min', '64', '--max', '1200'], 'soak-load');
    const t0 = Date.now();
    const samples: Record<'client' | 'server', Sample[]> = { client: [], server: [] };
    while (!(await load.waitExit(5000))) {
      const t = (Date.now() - t0) / 1000;
      if (t > SECONDS + 30) break;
      if (!tunnel.client.running || !tunnel.server.running) break;
      for (const role of ['client', 'server'] as const) samples[role].push(sample(tunnel[role].pid, t));
    }
    assert.ok(tunnel.client.running && tunnel.server.running, 'an rsock process died during the soak');
    const line = load.stdout().split('\n').find((l) => l.startsWith('{"result"'));
    assert.ok(line, `soak-load gave no result:\n${load.output()}`);
    const r = (JSON.parse(line) as { result: { sent: number; received: number; bad: number; dup: number; flowsOpened: number; ratio: number } }).result;
    console.log(`soak: ${r.received}/${r.sent} echoed (${(r.ratio * 100).toFixed(3)} %), ${r.bad} bad, ${r.dup} duplicated, ${r.flowsOpened} flows`);
    for (const role of ['client', 'server'] as const) {
      const s = samples[role];
      const base = s.find((x) => x.t >= SETTLED_S);
      assert.ok(base, `no ${role} sample after ${SETTLED_S} s`);
      const later = s.filter((x) => x.t >= base.t);
      const maxRss = Math.max(...later.map((x) => x.rss));
      const maxFds = Math.max(...later.map((x) => x.fds));
      const last = later[later.length - 1];
      console.log(`soak: rsock-${role}: at ${base.t.toFixed(0)} s RSS ${base.rss} MiB, ${base.fds} fds; after: max RSS ${maxRss} MiB, max ${maxFds} fds; ` +
        `at ${last.t.toFixed(0)} s RSS ${last.rss} MiB, ${last.fds} fds`);
      assert.ok(maxRss <= base.rss * 1.1, `rsock-${role}'s RSS grew from ${base.rss} to ${maxRss} MiB`);
      assert.ok(maxFds <= base.fds * 1.1, `rsock-${role}'s descriptors grew from ${base.fds} to ${maxFds}`);
    }
    assert.equal(r.bad, 0, 'echoes that are not what was sent');
    assert.ok(r.sent >= RATE * SECONDS * 0.95, `the load sent only ${r.sent} datagrams`);
    assert.ok(r.flowsOpened >= FLOWS + 20 * (SECONDS - 5), `only ${r.flowsOpened} flows came and went`);
    assert.ok(r.ratio >= 0.999, `only ${(r.ratio * 100).toFixed(3)} % delivered`);
    await sleep(0);
  }));
