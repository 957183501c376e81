// A DNS server answering ~3,000-byte responses through the tunnel (issue 8): dnsmasq in the server
// namespace, reached over a --forward (the server --allow's it; --taddr stays the echo service), dig
// in the client namespace with EDNS0 and a 4096-byte buffer, no TCP fallback. Every answer must come
// back complete: TC clear, all records, the same size and records as dnsmasq gives when asked directly.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { startTunnel } from '../lib/rsock';
import { startUdpEcho, untilEcho } from '../lib/traffic';

const topo = new Topology();
const NAME = 'big.rsk.test';
/** 12 TXT records of 240 characters: an answer of about 3,000 bytes, two segments' worth. */
const RECORDS = Array.from({ length: 12 }, (_, i) => `${String(i).padStart(2, '0')}${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(7).slice(0, 238)}`);
const DNS_LOCAL = { host: '127.0.0.1', port: 5353 };
const QUERIES = 50;

const dig = (role: 'client' | 'server', port: number, extra: string[] = []) =>
  topo.exec(role, ['dig', '+tries=1', '+time=3', '+ignore', '+bufsize=4096', '-p', String(port), '@127.0.0.1', NAME, 'TXT', ...extra], { timeoutMs: 10_000, allowFail: true });

interface Answer { status: string; tc: boolean; answers: number; size: number; records: string[] }
function parseDig(out: string): Answer {
  const flags = /;; flags: ([a-z ]+);/.exec(out)?.[1].split(' ') ?? [];
  return {
    status: /status: (\w+)/.exec(out)?.[1] ?? 'none',
    tc: flags.includes('tc'),
    answers: Number(/ANSWER: (\d+)/.exec(out)?.[1] ?? -1),
    size: Number(/MSG SIZE\s+rcvd: (\d+)/.exec(out)?.[1] ?? -1),
    records: [...out.matchAll(/\tTXT\t"([^"]*)"/g)].map((m) => m[1]).sort(),
  };
}

before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  // -d: foreground, no pid file, no change of user; -C /dev/null: no system config; nothing but our
  // records; --edns-packet-max: dnsmasq 2.90 answers at most 1232 bytes over UDP by default.
  const dnsmasq = topo.spawn('server', ['dnsmasq', '-d', '-C', '/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces',
    '--listen-address=127.0.0.1', '--port=53', '--edns-packet-max=4096', ...RECORDS.map((r) => `--txt-record=${NAME},${r}`)], { name: 'dnsmasq' });
  await dnsmasq.waitFor(/started/, 5000);
  await startTunnel(topo, {
    server: { extra: ['--allow=127.0.0.1:53'] },
    client: { extra: [`--forward=${DNS_LOCAL.host}:${DNS_LOCAL.port}=127.0.0.1:53`] },
  });
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo within 10 s');
}));
after(() => topo.destroy());

test(`${QUERIES} queries for a ~3,000-byte answer over a --forward: all answered, none truncated`, { timeout: 120_000 }, topo.guard(async () => {
  const direct = parseDig((await dig('server', 53)).stdout);
  console.log(`dns: dnsmasq directly: ${JSON.stringify({ ...direct, records: direct.records.length })}`);
  assert.deepEqual(direct.records, [...RECORDS].sort(), 'dnsmasq serves the records');
  assert.ok(direct.size > 2800 && !direct.tc, `the direct answer is ${direct.size} bytes${direct.tc ? ', truncated' : ''}`);
  const bad: string[] = [];
  let answered = 0;
  const t0 = Date.now();
  for (let i = 0; i < QUERIES; i++) {
    const r = await dig('client', DNS_LOCAL.port);
    const a = parseDig(r.stdout);
    if (a.status === 'none') continue; // no answer (timed out)
    answered++;
    if (a.status !== 'NOERROR' || a.tc || a.answers !== RECORDS.length || a.size !== direct.size || a.records.join() !== direct.records.join()) {
      bad.push(`#${i}: ${JSON.stringify({ ...a, records: a.records.length })}`);
    }
  }
  console.log(`dns: ${answered}/${QUERIES} answered through the tunnel in ${Date.now() - t0} ms, ${bad.length} incomplete, each ${direct.size} bytes`);
  assert.deepEqual(bad, [], 'answers that came back truncated or changed');
  assert.equal(answered, QUERIES, 'every query answered');
}));
