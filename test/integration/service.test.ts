// Running as a service (issue 9): both programs work as a user that holds only CAP_NET_RAW and
// CAP_NET_ADMIN (ambient, as the systemd units give them), say which capability is missing when one
// is, and the shipped units pass `systemd-analyze verify`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Topology } from '../lib/netns';
import { exec, pollUntil } from '../lib/proc';
import { clientArgs, LOG, READY_TIMEOUT_MS, REPO, serverArgs } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';
import { capsWrapper, NET_CAPS_MASK, serviceUser, unprivilegedUnavailable } from '../lib/unprivileged';

const topo = new Topology();
before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
}));
after(() => topo.destroy());

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

test('both ends as an unprivileged user holding only CAP_NET_RAW and CAP_NET_ADMIN: the tunnel carries traffic', { timeout: 60_000 }, topo.guard(async (t) => {
  const why = unprivilegedUnavailable();
  if (why) return t.skip(why);
  const user = serviceUser();
  const wrap = capsWrapper(user);
  const server = topo.spawn('server', [...wrap, ...serverArgs(topo)], { name: 'rsock-server-caps' });
  await server.waitFor(LOG.ready, READY_TIMEOUT_MS);
  const client = topo.spawn('client', [...wrap, ...clientArgs(topo)], { name: 'rsock-client-caps' });
  await client.waitFor(LOG.ready, READY_TIMEOUT_MS);
  for (const p of [server, client]) {
    const st = procStatus(p.pid);
    assert.equal(BigInt(`0x${st.CapEff}`), NET_CAPS_MASK, `CapEff of ${p.name}: ${st.CapEff}`);
    assert.equal(BigInt(`0x${st.CapBnd}`), NET_CAPS_MASK, `CapBnd of ${p.name}: ${st.CapBnd}`);
    assert.equal(st.NoNewPrivs, '1');
    assert.equal(Number(st.Uid.split(/\s+/)[0]), user.uid);
  }
  console.log(`service: both ends run as ${user.name} with CapEff=${procStatus(server.pid).CapEff}`);
  assert.ok((await untilEcho(topo, 10_000)).ok, 'no echo through the unprivileged tunnel');
  const r = await udpEcho(topo, { count: 200, rate: 200 });
  console.log(`service: ${r.received}/${r.sent} echoed`);
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  await server.stop();
  await client.stop();
}));

for (const [has, lacks] of [['net_raw', 'CAP_NET_ADMIN'], ['net_admin', 'CAP_NET_RAW']] as const) {
  test(`with only ${has.toUpperCase()}, both programs exit and name ${lacks}`, { timeout: 40_000 }, topo.guard(async (t) => {
    const why = unprivilegedUnavailable();
    if (why) return t.skip(why);
    const wrap = capsWrapper(serviceUser(), [has]);
    for (const [role, args] of [['server', serverArgs(topo)], ['client', clientArgs(topo)]] as const) {
      const r = await exec(['ip', 'netns', 'exec', topo.ns[role], ...wrap, ...args], { allowFail: true, timeoutMs: READY_TIMEOUT_MS + 5000 });
      assert.notEqual(r.code, 0, `rsock-${role} started without ${lacks}:\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(lacks), `rsock-${role}'s error does not name ${lacks}:\n${r.stderr}`);
    }
  }));
}

test('the systemd units pass systemd-analyze verify and grant exactly the two capabilities', { timeout: 60_000 }, async (t) => {
  if (!(await exec(['sh', '-c', 'command -v systemd-analyze'], { allowFail: true })).stdout.trim()) return t.skip('systemd-analyze is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rsock-units-'));
  try {
    for (const kind of ['server', 'client']) {
      const name = `rsock-${kind}@.service`;
      const text = fs.readFileSync(path.join(REPO, 'systemd', name), 'utf8');
      fs.writeFileSync(path.join(dir, name), text);
      const r = await exec(['systemd-analyze', 'verify', path.join(dir, `rsock-${kind}@test.service`)], { allowFail: true, timeoutMs: 30_000 });
      assert.equal(r.code, 0, `systemd-analyze verify ${name}:\n${r.stderr}`);
      assert.equal(r.stderr.trim(), '', `systemd-analyze warns about ${name}:\n${r.stderr}`);
      const set = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1].trim());
      for (const key of ['AmbientCapabilities', 'CapabilityBoundingSet']) assert.deepEqual(set(key).join(' ').split(/\s+/).sort(), ['CAP_NET_ADMIN', 'CAP_NET_RAW'], key);
      for (const [key, want] of [['NoNewPrivileges', 'yes'], ['DynamicUser', 'yes'], ['ProtectSystem', 'strict'], ['Restart', 'on-failure'],
        ['ExecStart', `/usr/local/bin/rsock-${kind} -f \${CREDENTIALS_DIRECTORY}/config.json`], ['LoadCredential', 'config.json:/etc/rsock/%i.json']]) {
        assert.deepEqual(set(key), [want], key);
      }
      assert.ok(!/^User=/m.test(text), `${name} names a fixed user`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
