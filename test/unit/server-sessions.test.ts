import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeTcp } from '../../src/core/fake-tcp';
import { ReplayWindow } from '../../src/core/replay';
import { CloseReason, PROTOCOL_VERSION } from '../../src/core/frame';
import { Link } from '../../src/core/link';
import { DEFAULT_SESSION_OPTIONS, Goodbye, ServerSessions, SessionDriver, SessionEvent, SessionLink } from '../../src/core/server-sessions';

class Recorder implements SessionDriver {
  log: string[] = [];
  nextSock = 1;
  failOpen = false;
  sendJoined(link: SessionLink, id: number): void {
    this.log.push(`helloack ${link.fd} ${id}`);
  }
  handBack(link: SessionLink): void {
    this.log.push(`handback ${link.fd}`);
  }
  endLink(link: SessionLink, goodbye: Goodbye, reason: string): void {
    this.log.push(`end ${link.fd} ${goodbye} ${reason}`);
  }
  openFlow(): number {
    if (this.failOpen) throw new Error('Too many open files');
    return this.nextSock++;
  }
  closeFlow(sock: number): void {
    this.log.push(`closeflow ${sock}`);
  }
  onEvent(ev: SessionEvent): void {
    this.log.push(`event ${ev.type}`);
  }
  has(prefix: string): boolean {
    return this.log.some((l) => l.startsWith(prefix));
  }
}

const opts = { ...DEFAULT_SESSION_OPTIONS, durationMs: 30000, keepaliveMs: 2000, allowed: [] };
let fdSeq = 10;
const base = (now: number): Link => {
  const tcp = new FakeTcp({ local: { ip: 2, port: 10001 }, remote: { ip: 1, port: 40000 + fdSeq }, sndNxt: 1, rcvNxt: 1, now });
  return { fd: fdSeq++, maxDatagram: 1433, tcp, path: tcp, wire: { txSlot: -1, rxSlot: -1, rxFrom: 0, replay: new ReplayWindow() } };
};
const hello = (slot: number, keepaliveMs = 1000) => ({ version: PROTOCOL_VERSION, keepaliveMs, slot });

function setup() {
  const d = new Recorder();
  return { d, s: new ServerSessions(opts, d) };
}

test('a link carries nothing until a valid Join; then it joins its session and is answered', () => {
  const { d, s } = setup();
  const l = s.accept(base(0), 0);
  assert.equal(s.data(l, 1, 1), null, 'data before Join creates no flow');
  s.join(l, 0xabc, { version: 9, keepaliveMs: 1000, slot: 0 }, 2);
  assert.ok(d.has('event badVersion'));
  assert.equal(l.session, null);
  s.join(l, 0xabc, null, 3);
  assert.equal(l.session, null, 'a short Join is refused');
  s.join(l, 0xabc, hello(0), 4);
  assert.equal((l.session as { id: number } | null)?.id, 0xabc);
  assert.equal(l.deadAfterMs, 3500, "dead-link timer from the client's keepalive");
  assert.ok(d.has(`helloack ${l.fd} ${0xabc}`));
  s.join(l, 0xdef, hello(0), 5);
  assert.equal(l.session!.id, 0xabc, 'a link never changes session');
  assert.equal(s.sessionCount, 1);
});

test('no greeting and Join within the deadline: the link is closed with a FIN, like an idle server connection', () => {
  const { d, s } = setup();
  const l = s.accept(base(0), 0);
  s.tick(opts.helloDeadlineMs - 1);
  assert.equal(s.linkCount, 1);
  s.tick(opts.helloDeadlineMs);
  assert.equal(s.linkCount, 0);
  assert.ok(d.has(`end ${l.fd} fin no valid greeting and Join`));
});

test("a new Join for a slot retires the old link; replies follow the flow's last link, else round-robin", () => {
  const { d, s } = setup();
  const a = s.accept(base(0), 0);
  const b = s.accept(base(0), 0);
  s.join(a, 7, hello(0), 1);
  s.join(b, 7, hello(1), 1);
  const flow = s.data(b, 42, 2)!;
  assert.equal(s.reply(flow.sock, 3)!.link, b, 'reply on the link the client last used');
  s.data(a, 42, 4);
  assert.equal(s.reply(flow.sock, 5)!.link, a);
  // The client lost slot 0 and redialed it: the old link goes, and the flow's replies move on.
  const a2 = s.accept(base(6), 6);
  s.join(a2, 7, hello(0), 6);
  assert.ok(d.has(`end ${a.fd} none replaced`));
  assert.equal(a.tcp.open, false);
  const r = s.reply(flow.sock, 7)!.link;
  assert.ok(r === b || r === a2, 'the reply went to a live link of the session');
  assert.equal(s.session(7)!.links.length, 2);
  assert.equal(s.reply(999, 8), null, 'unknown sockets are not ours');
});

test('a silent link is closed as dead (Close + FIN); a session with nothing left is forgotten later', () => {
  const { d, s } = setup();
  const l = s.accept(base(0), 0);
  s.join(l, 7, hello(0, 1000), 0);
  const flow = s.data(l, 1, 0)!;
  s.tick(3499);
  assert.equal(s.linkCount, 1);
  s.tick(3500);
  assert.ok(d.has(`end ${l.fd} ${CloseReason.Dead} no traffic for 4 s`));
  assert.equal(s.reply(flow.sock, 3501)!.link, null, 'no link to reply on');
  // The target's datagram at 3501 counted as activity: the flow expires --duration after it, and
  // the session, with no link and no flow left, goes with it.
  s.tick(33500);
  assert.equal(s.flowCount, 1);
  s.tick(33501);
  assert.ok(d.has(`closeflow ${flow.sock}`));
  assert.equal(s.flowCount, 0);
  s.tick(34500); // sessions are swept once a second
  assert.equal(s.sessionCount, 0);
});

test('Bye drops the session with its links and flows; a Bye naming another session does nothing', () => {
  const { d, s } = setup();
  const l = s.accept(base(0), 0);
  s.join(l, 7, hello(0), 0);
  const f = s.data(l, 1, 0)!;
  s.bye(l, 8, 1);
  assert.equal(s.sessionCount, 1);
  s.bye(l, 7, 1);
  assert.equal(s.sessionCount, 0);
  assert.ok(d.has(`end ${l.fd} fin the client shut down`));
  assert.ok(d.has(`closeflow ${f.sock}`));
});

test('a flow whose socket cannot open is reported and the datagram dropped, without a throw', () => {
  const { d, s } = setup();
  const l = s.accept(base(0), 0);
  s.join(l, 7, hello(0), 0);
  d.failOpen = true;
  assert.equal(s.data(l, 1, 1), null);
  assert.ok(d.has('event flowFailed'));
  d.failOpen = false;
  assert.ok(s.data(l, 1, 2));
});

test('stop says Close(Shutdown) on every link and closes every flow', () => {
  const { d, s } = setup();
  const a = s.accept(base(0), 0);
  const b = s.accept(base(0), 0);
  s.join(a, 7, hello(0), 0);
  const f = s.data(a, 1, 0)!;
  s.stop(1);
  assert.ok(d.has(`end ${a.fd} ${CloseReason.Shutdown}`));
  assert.ok(d.has(`end ${b.fd} ${CloseReason.Shutdown}`));
  assert.ok(d.has(`closeflow ${f.sock}`));
  assert.equal(s.linkCount + s.sessionCount + s.flowCount, 0);
});
