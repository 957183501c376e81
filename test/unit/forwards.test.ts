// Forwards (several targets over one tunnel): the table's wire form, the server's per-session refusal,
// and the real client and server over the simulated network with two allowed targets and one refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Crypto } from '../../src/core/crypto';
import {
  decodeForwardAnswers, decodeForwardTable, encodeForwardAnswers, encodeForwardTable, flowIdOf, forwardIndex, matchTarget, MAX_TABLE_BYTES,
} from '../../src/core/forwards';
import { FakeTcp } from '../../src/core/fake-tcp';
import { JOIN_LEN, PROTOCOL_VERSION, readJoin, writeJoin } from '../../src/core/frame';
import { ipToInt } from '../../src/core/ipv4';
import { ReplayWindow } from '../../src/core/replay';
import { DEFAULT_SESSION_OPTIONS, ServerSessions, SessionDriver, SessionEvent, SessionLink } from '../../src/core/server-sessions';
import { sodiumCrypto } from '../sim/crypto';
import { SimTunnel } from '../sim/tunnel';

let crypto: Crypto;
before(async () => {
  crypto = await sodiumCrypto();
});

test('the forward table and the answers survive the wire; malformed tables and a plain Joined read as none', () => {
  const targets = [{ host: 'dns.internal', port: 53 }, { host: '10.0.0.7', port: 51820 }];
  const table = encodeForwardTable(targets);
  assert.deepEqual(decodeForwardTable(table, 0, table.length), targets);
  for (let cut = 1; cut < table.length; cut++) assert.equal(decodeForwardTable(table, 0, cut), null, `cut at ${cut}`);
  const bad = Buffer.from(table);
  bad[4] = 0x0a; // a control character in the first host name: that entry matches nothing
  assert.equal(decodeForwardTable(bad, 0, bad.length)![0].host, '');
  assert.throws(() => encodeForwardTable(Array.from({ length: 20 }, (_, i) => ({ host: `${'h'.repeat(30)}${i}.example`, port: 53 }))), new RegExp(`at most ${MAX_TABLE_BYTES}`));
  assert.throws(() => encodeForwardTable([{ host: 'bad host', port: 53 }]), /not a host name/);

  const join = Buffer.alloc(JOIN_LEN + table.length);
  writeJoin(join, 0, { version: PROTOCOL_VERSION, keepaliveMs: 2000, slot: 3 });
  table.copy(join, JOIN_LEN);
  assert.deepEqual(readJoin(join, 0, join.length)?.forwards, targets);
  assert.equal(readJoin(join, 0, JOIN_LEN)?.forwards, null, "an old-style Join has no table");

  const answers = encodeForwardAnswers([true, false, true]);
  assert.deepEqual(decodeForwardAnswers(answers, 0, answers.length), [true, false, true]);
  // An older server's Joined under tls: two zero bytes of padding.
  assert.equal(decodeForwardAnswers(Buffer.alloc(2), 0, 2), null);
  assert.equal(decodeForwardAnswers(Buffer.alloc(0), 0, 0), null);
});

test('flow ids carry the forward index in their top bits; targets match by configured name or address, and port', () => {
  assert.equal(flowIdOf(0, 5), 5, 'index 0 keeps the old flow ids');
  assert.equal(forwardIndex(flowIdOf(31, 0xffffff)), 31);
  assert.equal(flowIdOf(31, 0xffffff) & 0xffffff, 0xffffff);
  const allowed = [{ host: 'dns.internal', ip: '10.0.0.53', port: 53 }];
  assert.equal(matchTarget({ host: 'DNS.internal', port: 53 }, allowed), allowed[0]);
  assert.equal(matchTarget({ host: '10.0.0.53', port: 53 }, allowed), allowed[0]);
  assert.equal(matchTarget({ host: '10.0.0.53', port: 54 }, allowed), null);
  assert.equal(matchTarget({ host: 'other.internal', port: 53 }, allowed), null);
  assert.equal(matchTarget({ host: '', port: 53 }, allowed), null);
});

class Driver implements SessionDriver {
  events: SessionEvent[] = [];
  opened: { flowId: number; target: string }[] = [];
  answers: (boolean[] | null)[] = [];
  sendJoined(_l: SessionLink, _id: number, answers: boolean[] | null): void {
    this.answers.push(answers);
  }
  handBack(): void {}
  endLink(): void {}
  openFlow(_s: unknown, flowId: number, target: { ip: string; port: number } | undefined): number {
    this.opened.push({ flowId, target: target ? `${target.ip}:${target.port}` : 'taddr' });
    return this.opened.length;
  }
  closeFlow(): void {}
  onEvent(ev: SessionEvent): void {
    this.events.push(ev);
  }
}

function sessions() {
  const d = new Driver();
  const allowed = [{ host: '127.0.0.1', ip: '127.0.0.1', port: 9999 }, { host: 'dns.internal', ip: '10.0.0.53', port: 53 }];
  const s = new ServerSessions({ ...DEFAULT_SESSION_OPTIONS, durationMs: 30000, keepaliveMs: 2000, allowed }, d);
  const conn = new FakeTcp({ local: { ip: 2, port: 10001 }, remote: { ip: 1, port: 40000 }, sndNxt: 1, rcvNxt: 1, now: 0 });
  const link = s.accept({ fd: 1, maxDatagram: 1400, tcp: conn, path: conn, wire: { txSlot: -1, rxSlot: -1, rxFrom: 0, replay: new ReplayWindow() } }, 0);
  return { d, s, link };
}

test('server: each forward answered in Joined; a refused flow delivers nothing and is logged once; old-style sessions ignore the index', () => {
  const { d, s, link } = sessions();
  s.join(link, 7, { version: PROTOCOL_VERSION, keepaliveMs: 1000, slot: 0, forwards: [{ host: 'dns.internal', port: 53 }, { host: '10.9.9.9', port: 53 }] }, 1);
  assert.deepEqual(d.answers, [[true, false]]);
  assert.ok(s.data(link, flowIdOf(0, 1), 2), '--ludp flow');
  assert.ok(s.data(link, flowIdOf(1, 2), 2), 'allowed forward');
  assert.deepEqual(d.opened, [{ flowId: 1, target: 'taddr' }, { flowId: flowIdOf(1, 2), target: '10.0.0.53:53' }]);
  for (let i = 0; i < 5; i++) {
    assert.equal(s.data(link, flowIdOf(2, 3), 3 + i), null, 'refused forward');
    assert.equal(s.data(link, flowIdOf(9, 4), 3 + i), null, 'index the table does not have');
  }
  const refused = d.events.filter((e) => e.type === 'flowRefused');
  assert.deepEqual(refused.map((e) => (e as { why: string }).why), ['10.9.9.9:53, which is not in --allow', "forward #9, which the client's table does not have"]);
  assert.equal(d.opened.length, 2, 'no socket for refused flows');
  s.join(link, 7, { version: PROTOCOL_VERSION, keepaliveMs: 1000, slot: 0, forwards: null }, 10);
  assert.deepEqual(d.answers[1], null, 'a Join without a table gets a plain Joined');
  // Refused flows idle out like others; one that comes back is refused (and said) again.
  s.tick(40000);
  s.data(link, flowIdOf(2, 3), 40001);
  assert.equal(d.events.filter((e) => e.type === 'flowRefused').length, 3);

  const old = sessions();
  old.s.join(old.link, 8, { version: PROTOCOL_VERSION, keepaliveMs: 1000, slot: 0, forwards: null }, 1);
  assert.deepEqual(old.d.answers, [null]);
  assert.ok(old.s.data(old.link, 0x05000001, 2), 'a client without a table: every flow goes to --taddr');
  assert.deepEqual(old.d.opened, [{ flowId: 0x05000001, target: 'taddr' }]);
});

test('tunnel: two forwards answered on their own local endpoints beside --ludp; a target not allowed gets nothing', async () => {
  const t = new SimTunnel(crypto, { ports: [10001, 10002] });
  const dns = t.serverHost.udpSocket(5353);
  const wg = t.serverHost.udpSocket(51820);
  const denied = t.serverHost.udpSocket(6000);
  dns.echo = wg.echo = denied.echo = true;
  const lines: string[] = [];
  t.log.setLevel('info');
  t.log.sink = (l) => lines.push(l);
  t.startServer({ allow: [{ host: 'dns.local', ip: '127.0.0.1', port: 5353 }, { host: '127.0.0.1', ip: '127.0.0.1', port: 51820 }] });
  const forwards = [
    { localHost: '127.0.0.1', localPort: 30001, target: { host: 'dns.local', port: 5353 } },
    { localHost: '127.0.0.1', localPort: 30002, target: { host: '127.0.0.1', port: 51820 } },
    { localHost: '127.0.0.1', localPort: 30003, target: { host: '127.0.0.1', port: 6000 } },
  ];
  t.startClient({ forwards });
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === 2, 2000) >= 0);
  const apps = [t.app(), t.app(), t.app(), t.app()];
  const ports = [30000, 30001, 30002, 30003];
  for (let i = 0; i < 20; i++) {
    apps.forEach((a, k) => a.send(ipToInt('127.0.0.1'), ports[k], Buffer.from(`to ${ports[k]} #${i}`)));
    t.run(5);
  }
  t.run(100);
  const got = (k: number) => apps[k].received.filter((r) => r.port === ports[k] && r.data.toString().startsWith(`to ${ports[k]} #`)).length;
  assert.equal(got(0), 20, '--ludp answered by --taddr');
  assert.equal(got(1), 20, 'first forward answered on its endpoint');
  assert.equal(got(2), 20, 'second forward answered on its endpoint');
  assert.equal(apps[3].received.length, 0, 'the refused forward got no answer');
  assert.deepEqual([t.echo.received.length, dns.received.length, wg.received.length, denied.received.length], [20, 20, 20, 0]);
  assert.ok(apps.slice(0, 3).every((a) => a.received.length === 20), 'no answer came back on another endpoint');
  assert.equal(t.client.stats().droppedRefused, 20);
  assert.equal(lines.filter((l) => /30003 -> 127\.0\.0\.1:6000: refused by the server \(give its rsock-server --allow=127\.0\.0\.1:6000\)/.test(l)).length, 1);
  assert.equal(lines.filter((l) => /to 127\.0\.0\.1:30003 -> 127\.0\.0\.1:6000: dropped/.test(l)).length, 1, 'logged once for the flow');

  // A client that ignores the refusal (old, buggy or hostile): the server still delivers nothing, and says so once per flow.
  (t.client as unknown as { endpoints: { allowed(): boolean } }).endpoints.allowed = () => true;
  const stubborn = [t.app(), t.app()];
  for (let i = 0; i < 10; i++) {
    for (const a of stubborn) a.send(ipToInt('127.0.0.1'), 30003, Buffer.from(`sneak #${i}`));
    t.run(5);
  }
  t.run(100);
  assert.equal(denied.received.length, 0, 'nothing reached the target not allowed');
  assert.equal(t.server.stats().flowsRefused, 2);
  assert.equal(lines.filter((l) => /refused: it is for 127\.0\.0\.1:6000, which is not in --allow/.test(l)).length, 2, 'one line per flow');
  await t.stop();
});

test('tunnel: a server that does not answer the table (one older than forwards) gets no forward datagrams; --ludp still works', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] });
  const target = t.serverHost.udpSocket(5353);
  target.echo = true;
  const lines: string[] = [];
  t.log.setLevel('info');
  t.log.sink = (l) => lines.push(l);
  const server = t.startServer({ allow: [{ host: '127.0.0.1', ip: '127.0.0.1', port: 5353 }] });
  // As an older server does: a plain Joined, whatever the Join carried.
  const plain = server.sendJoined.bind(server);
  server.sendJoined = (link, id) => plain(link, id, null);
  t.startClient({ forwards: [{ localHost: '127.0.0.1', localPort: 30001, target: { host: '127.0.0.1', port: 5353 } }] });
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === 1, 2000) >= 0);
  const app = t.app();
  const fwdApp = t.app();
  for (let i = 0; i < 5; i++) {
    app.send(ipToInt('127.0.0.1'), 30000, Buffer.from(`ludp #${i}`));
    fwdApp.send(ipToInt('127.0.0.1'), 30001, Buffer.from(`fwd #${i}`));
    t.run(5);
  }
  t.run(100);
  assert.equal(app.received.length, 5);
  assert.equal(fwdApp.received.length + target.received.length, 0, 'nothing went over the forward');
  assert.equal(t.echo.received.length, 5, '--taddr got only the --ludp datagrams');
  assert.equal(lines.filter((l) => /did not answer the forward table/.test(l)).length, 1);
  await t.stop();
});

test('tunnel: a client without --forward sends the same 7-byte Join as before forwards, and gets a Joined without answers', async () => {
  const t = new SimTunnel(crypto, { ports: [10001] });
  const server = t.startServer({ allow: [{ host: '127.0.0.1', ip: '127.0.0.1', port: 5353 }] });
  const joins: number[] = [];
  const answers: unknown[] = [];
  const onFrame = server.onFrame.bind(server);
  server.onFrame = (link, type, arg, buf, off, len, now) => {
    if (type === 2) joins.push(len);
    onFrame(link, type, arg, buf, off, len, now);
  };
  const sendJoined = server.sendJoined.bind(server);
  server.sendJoined = (link, id, a) => {
    answers.push(a);
    sendJoined(link, id, a);
  };
  t.startClient();
  assert.ok(t.net.time.runUntil(() => t.client.liveConnections === 1, 2000) >= 0);
  assert.ok(joins.length >= 1 && joins.every((n) => n === JOIN_LEN), `Join lengths ${joins}`);
  assert.ok(answers.every((a) => a === null));
  await t.stop();
});
