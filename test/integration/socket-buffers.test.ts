// The receive buffers rsock asks the kernel for, as the kernel reports them (ss -m: skmem's rb, the
// cap on the bytes queued for a socket). They let a busy or descheduled end catch up after a stall
// instead of dropping what came meanwhile (BENCHMARKS.md, cut 8: with 4 MiB the capture dropped
// 30,000-70,000 segments per rate search). Client ns -> strict conntrack router -> server ns.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { Topology } from '../lib/netns';
import { Proc } from '../lib/proc';
import { startTunnel } from '../lib/rsock';
import { startUdpEcho, untilEcho } from '../lib/traffic';

const MIN_RB = 32 << 20;

const topo = new Topology();
let ends: { server: Proc; client: Proc };
before(topo.guard(async () => {
  await topo.up();
  await startUdpEcho(topo);
  ends = await startTunnel(topo);
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the tunnel within 10 s of "ready"');
}));
after(() => topo.destroy());

/** rb of each socket of `pid` that `ss -m` lists with `kind` (-u UDP, -0 packet), in its namespace. */
async function receiveBuffers(role: 'client' | 'server', kind: string, pid: number): Promise<number[]> {
  const out = (await topo.exec(role, ['ss', kind, '-a', '-n', '-m', '-p'])).stdout;
  const rb: number[] = [];
  // Each socket: a line naming its process, then one with skmem:(r0,rb...,...).
  const lines = out.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].includes(`pid=${pid},`)) continue;
    const m = /skmem:\(r\d+,rb(\d+),/.exec(lines[i] + (lines[i + 1] ?? ''));
    if (m) rb.push(Number(m[1]));
  }
  return rb;
}

test('the capture and UDP sockets of both ends have receive buffers of 32 MiB or more', topo.guard(async () => {
  for (const [role, p] of [['client', ends.client], ['server', ends.server]] as const) {
    for (const [kind, what] of [['-0', 'packet (capture)'], ['-u', 'UDP']]) {
      const rb = await receiveBuffers(role, kind, p.pid!);
      console.log(`socket buffers: rsock-${role} ${what}: rb ${rb.join(', ')}`);
      assert.ok(rb.length > 0, `ss lists no ${what} socket of rsock-${role}`);
      for (const b of rb) assert.ok(b >= MIN_RB, `a ${what} socket of rsock-${role} has rb ${b} (< ${MIN_RB})`);
    }
  }
}));
