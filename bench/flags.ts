// rsock under different flags, side by side in one sitting: each configuration is its own instance
// (its own ports and --ludp) on the benchmark's veth path, idle while another one is measured, and
// every round measures each in turn: a UDP ping-pong with one datagram in flight, then one paced at
// --rate, with the CPU (schedstat, every thread of both ends) per ping. Medians over the rounds.
//
//   flock /tmp/rsock-measure.lock node dist/bench/flags.js [--rounds=4] [--rate=2000] [--cpus=LIST] NAME=FLAGS ...
//   e.g.  node dist/bench/flags.js off= bp100=--busy-poll=100 "bp600=--busy-poll=600 --obfs=none"
// FLAGS go to both ends; c:FLAG to the client only ("w2=--workers=2 c:--conns=2").
// --cpus: every process (both ends, the pinging app, the echoing target) on these CPUs (taskset), as
// on a machine with that many cores.
import { DirectPair } from '../test/lib/direct-pair';
import { pinProcess, sleep } from '../test/lib/proc';
import { schedCpuUs } from '../test/lib/procstat';
import { Instance, Instances } from './instances';
import { CONF } from './options';
import { Results } from './results';
import { median } from './stats';
import * as udpload from './udpload';

/** flags: both ends; clientFlags: the client only (given as c:FLAG). */
interface Config { name: string; flags: string[]; clientFlags: string[] }
interface Opts { rounds: number; rate: number; cpus: string | null; configs: Config[] }

function parse(argv: string[]): Opts {
  const o: Opts = { rounds: 4, rate: CONF.pacedRate, cpus: null, configs: [] };
  for (const a of argv) {
    const [k, v] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    if (k === '--rounds' && Number(v) >= 1) o.rounds = Number(v);
    else if (k === '--rate' && Number(v) >= 10) o.rate = Number(v);
    else if (k === '--cpus' && /^\d+([,-]\d+)*$/.test(v)) o.cpus = v;
    else if (/^[\w.-]+$/.test(k) && !k.startsWith('-')) {
      const all = v.split(' ').filter(Boolean);
      o.configs.push({ name: k, flags: all.filter((f) => !f.startsWith('c:')), clientFlags: all.filter((f) => f.startsWith('c:')).map((f) => f.slice(2)) });
    }
    else throw new Error(`flags: bad argument ${a} (NAME=FLAGS ..., --rounds=N≥1, --rate=N≥10, --cpus=LIST)`);
  }
  if (o.configs.length === 0 || o.configs.length > 8) throw new Error('flags: give 1 to 8 configurations as NAME=FLAGS');
  return o;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const host = new DirectPair({ logPrefix: 'rsock-flags' });
  const runs: Array<{ c: Config; a: Instance; dst: string; res: Map<string, number[][]> }> = [];
  try {
    await host.up();
    await udpload.buildUdpload();
    const serve = await udpload.startServe(host, `0.0.0.0:${CONF.targetPort}`, 3600);
    const inst = new Instances(host, new Results(), `flags-${host.id}`);
    for (const [k, c] of o.configs.entries()) {
      const ludp = CONF.ludp + 10 * k;
      const a = await inst.start(c.name, `${10001 + 20 * k}-${10010 + 20 * k}`, `127.0.0.1:${CONF.targetPort}`, ludp, c.flags, c.clientFlags);
      if (!a) throw new Error(`${c.name}: ${inst.reason}`);
      runs.push({ c, a, dst: `127.0.0.1:${ludp}`, res: new Map() });
    }
    await sleep(1000); // every connection up
    if (o.cpus) {
      udpload.pinPing(o.cpus);
      for (const pid of [...runs.flatMap((x) => [x.a.client.pid!, x.a.server.pid!]), serve.pid!]) await pinProcess(pid, o.cpus);
    }
    for (const x of runs) await udpload.ping(host, 'client', x.dst, 3000, 0, 200, 10); // the JIT warmed up
    for (let round = 0; round < o.rounds; round++) {
      for (const rate of [0, o.rate]) {
        for (const x of runs) {
          const c0 = schedCpuUs(x.a.client.pid!) + schedCpuUs(x.a.server.pid!);
          const p = await udpload.ping(host, 'client', x.dst, rate ? rate * 3 : 1_000_000, 0, 200, rate ? 8 : 2, rate);
          const us = (schedCpuUs(x.a.client.pid!) + schedCpuUs(x.a.server.pid!) - c0) / Math.max(1, p.samples);
          const key = rate ? `paced ${rate}/s` : 'one in flight';
          x.res.set(key, [...(x.res.get(key) ?? []), [p.p50us ?? NaN, p.p99us ?? NaN, us]]);
        }
      }
    }
    console.log(`# ${o.rounds} rounds${o.cpus ? `, every process on CPUs ${o.cpus}` : ''}; RTT µs; CPU µs per ping, both ends, every thread`);
    for (const x of runs) {
      for (const [k, v] of x.res) {
        console.log(`${x.c.name.padEnd(12)} ${k.padEnd(14)} p50 ${median(v.map((y) => y[0])).toFixed(1).padStart(7)}  p99 ${median(v.map((y) => y[1])).toFixed(1).padStart(7)}` +
          `  CPU/ping ${median(v.map((y) => y[2])).toFixed(1).padStart(6)}   p50 per round: ${v.map((y) => y[0].toFixed(0)).join(' ')}`);
      }
    }
    for (const x of runs) await inst.stop(x.a);
  } finally {
    await host.destroy();
  }
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
