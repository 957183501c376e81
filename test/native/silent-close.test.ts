// The socket watcher's handshake: learned sequence numbers, the silenced kernel socket, silent closes. Shared helpers: helpers.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { HandshakeInfo, WatcherEvent } from '../../src/io/native';
import {
  native, LO, LO_U32, FIN, SYN, PSH, ACK, sleep, waitFor, randomPort, Tx, packTx, Recorder, newWatcher, listenOnFreePort, payload,
} from './helpers';

test('watcher: handshake, seq learning, silenced kernel, silent close', async () => {
  const { watcher, events } = newWatcher();
  const inj = new native.Injector();
  let rec: Recorder | null = null;
  let handshake: Recorder | null = null;
  try {
    const { fd: lfd, port } = listenOnFreePort(watcher);
    // Independent check of the learned numbers: the SYN and SYN|ACK as they crossed the wire.
    handshake = new Recorder(`tcp and port ${port} and tcp[tcpflags] & tcp-syn != 0`);
    const cfd = watcher.connect(LO, LO, port);
    await waitFor(() => events.length >= 2, 3000, "'accepted' and 'connected'");
    const acc = events.find((e) => e.type === 'accepted') as Extract<WatcherEvent, { type: 'accepted' }>;
    const con = events.find((e) => e.type === 'connected') as HandshakeInfo & { type: 'connected' };
    assert.ok(acc && con, `got ${JSON.stringify(events)}`);
    assert.equal(acc.listenFd, lfd);
    assert.equal(con.fd, cfd);
    assert.notEqual(acc.fd, cfd);
    assert.equal(acc.localIp, LO_U32);
    assert.equal(acc.localPort, port);
    assert.equal(con.remotePort, port);
    assert.equal(acc.remotePort, con.localPort);
    assert.equal(con.sndNxt, acc.rcvNxt, "client's next seq is what the server expects");
    assert.equal(acc.sndNxt, con.rcvNxt, "server's next seq is what the client expects");
    for (const h of [acc, con]) {
      assert.ok(Number.isInteger(h.sndNxt) && h.sndNxt >= 0 && h.sndNxt <= 0xffffffff);
      assert.ok(h.mss > 0 && h.mss <= 65535, `mss ${h.mss}`);
      assert.ok(h.rcvWscale >= 0 && h.rcvWscale <= 14);
      assert.ok(h.sndWscale >= 0 && h.sndWscale <= 14);
    }
    assert.equal(acc.rcvWscale, con.sndWscale);
    assert.equal(acc.sndWscale, con.rcvWscale);
    await waitFor(() => handshake!.segs.length >= 2, 3000, 'SYN and SYN|ACK');
    const syn = handshake.segs.find((x) => x.flags === SYN);
    const synAck = handshake.segs.find((x) => x.flags === (SYN | ACK));
    assert.ok(syn && synAck, `handshake seen: ${JSON.stringify(handshake.segs.map((x) => x.flags))}`);
    assert.equal(syn.sport, con.localPort);
    assert.equal((syn.seq + 1) >>> 0, con.sndNxt, 'client sndNxt = its ISN + 1');
    assert.equal((synAck.seq + 1) >>> 0, acc.sndNxt, 'server sndNxt = its ISN + 1');
    assert.equal(synAck.ack, con.sndNxt);

    const cport = con.localPort;
    rec = new Recorder(`tcp and port ${port} and port ${cport}`);
    const fromClient = () => rec!.segs.filter((s) => s.sport === cport);
    const fromServer = () => rec!.segs.filter((s) => s.sport === port);

    // Data with exactly the right sequence numbers, in both directions, plus a pure ACK.
    const payload = Buffer.alloc(1000, 0xab);
    const segs: Tx[] = [];
    for (let i = 0; i < 4; i++) {
      segs.push({ src: LO_U32, dst: LO_U32, sport: cport, dport: port, seq: (con.sndNxt + i * 1000) >>> 0,
        ack: con.rcvNxt, flags: PSH | ACK, window: 65535, payload });
      segs.push({ src: LO_U32, dst: LO_U32, sport: port, dport: cport, seq: (acc.sndNxt + i * 1000) >>> 0,
        ack: acc.rcvNxt, flags: PSH | ACK, window: 65535, payload });
    }
    segs.push({ src: LO_U32, dst: LO_U32, sport: cport, dport: port, seq: (con.sndNxt + 4000) >>> 0,
      ack: (con.rcvNxt + 4000) >>> 0, flags: ACK, window: 65535, payload: Buffer.alloc(0) });
    const { data, meta } = packTx(segs);
    assert.equal(inj.send(data, meta, segs.length), segs.length);
    // Positive control: the capture does see the segments we injected.
    await waitFor(() => fromClient().length >= 5 && fromServer().length >= 4, 3000, 'injected segments');
    await sleep(300);
    assert.equal(fromClient().length, 5, 'client kernel sent nothing of its own');
    assert.equal(fromServer().length, 4, 'server kernel sent nothing of its own');

    rec.segs.length = 0;
    watcher.close(acc.fd);
    watcher.close(con.fd);
    watcher.close(lfd);
    watcher.close(lfd); // unknown by now: ignored
    watcher.close(123456);
    await sleep(300);
    assert.deepEqual(rec.segs.map((s) => s.flags), [], 'no FIN or RST, nothing at all, on close');
    assert.deepEqual(rec.errors, []);
    assert.equal(events.length, 2, 'no further events');
  } finally {
    handshake?.close();
    rec?.close();
    watcher.stop();
    inj.close();
  }
});

test('control: the same capture does see a normal close (FIN)', async () => {
  const port = randomPort();
  const server = net.createServer((s) => s.on('data', () => {}).on('end', () => s.end()));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, LO, resolve));
  let rec: Recorder | null = null;
  try {
    const client = net.connect(port, LO);
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    rec = new Recorder(`tcp and port ${port} and port ${client.localPort}`);
    client.end();
    await waitFor(() => rec!.segs.filter((s) => s.flags & FIN).length >= 2, 3000, 'FINs of a normal close');
  } finally {
    rec?.close();
    server.close();
  }
});

test('watcher: closing a listener with connections still in its accept queue sends nothing', async () => {
  const { watcher, events } = newWatcher();
  let rec: Recorder | null = null;
  try {
    const { fd: lfd, port } = listenOnFreePort(watcher);
    rec = new Recorder(`tcp and port ${port} and tcp[tcpflags] & (tcp-rst|tcp-fin) != 0`);
    const cfd = watcher.connect(LO, LO, port);
    // Hold the JS thread: the kernel completes the handshake and queues the connection for accept(),
    // which the watcher only calls from the event loop. close() must take it from there silently.
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // busy wait on purpose
    }
    watcher.close(lfd);
    await waitFor(() => events.length >= 1, 3000, "the client's 'connected'");
    assert.deepEqual(events.map((e) => [e.type, e.fd]), [['connected', cfd]]);
    watcher.close(cfd);
    await sleep(300);
    assert.deepEqual(rec.segs.map((s) => s.flags), [], 'no RST for the queued connection, no FIN');
    assert.deepEqual(rec.errors, []);
  } finally {
    rec?.close();
    watcher.stop();
  }
});
