// The simulated kernel sockets' hand-back and probe serving, which the tunnel tests rely on to stand
// for SocketWatcher.handBack and TunnelIo.serveProbe.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { ipToInt } from '../../src/core/ipv4';
import type { Crypto } from '../../src/core/crypto';
import type { WatcherEvent } from '../../src/io/native';
import { SimIo } from '../sim/io';
import { sodiumCrypto } from '../sim/crypto';
import { SimNetwork } from '../sim/network';

let mac: Crypto;
before(async () => {
  mac = await sodiumCrypto();
});

test('sim: handshake info has the new fields; handBack forgets the socket; serveProbe records and takes it', () => {
  const net = new SimNetwork();
  const server = new SimIo(net.host('server', ipToInt('10.9.0.2')), mac);
  const client = new SimIo(net.host('client', ipToInt('10.9.0.1')), mac);
  const sEvents: WatcherEvent[] = [];
  const cEvents: WatcherEvent[] = [];
  const sw = server.openSockets((ev) => sEvents.push(ev));
  const lfd = sw.listen('', 10001, 16);
  client.openSockets((ev) => cEvents.push(ev)).connect('', '10.9.0.2', 10001);
  net.time.run(20);
  const acc = sEvents[0] as Extract<WatcherEvent, { type: 'accepted' }>;
  const con = cEvents[0] as Extract<WatcherEvent, { type: 'connected' }>;
  assert.equal(acc.type, 'accepted');
  assert.equal(con.type, 'connected');
  for (const h of [acc, con]) {
    assert.equal(h.tsOk, true);
    assert.equal(h.ttl, 64);
    assert.ok(h.rcvWnd > 0);
    assert.ok(Number.isInteger(h.tsVal) && h.tsVal >= 0 && h.tsVal <= 0xffffffff);
  }

  assert.throws(() => sw.handBack(lfd), /not an established connection/);
  sw.handBack(acc.fd);
  assert.throws(() => sw.handBack(acc.fd), /not an established connection of this watcher/);
  sw.close(acc.fd); // not the watcher's any more: left alone
  sw.stop();
  assert.ok(server.host.sockets.has(acc.fd), 'the kernel still holds it');
  server.serveProbe(acc.fd);
  assert.deepEqual(server.probes, [acc.fd]);
  assert.ok(server.host.sockets.get(acc.fd)?.handedBack, 'the kernel serves it (the sim counts what reaches it)');
});
