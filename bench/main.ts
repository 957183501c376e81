// rsock benchmark (`sudo npm run bench`, see --help and BENCHMARKS.md): direct UDP (baseline)
// against the same traffic through rsock, in one run, on the namespace harness of the integration
// tests (test/lib): first on a plain veth (two namespaces), then through the tests' strict
// conntrack router (three, router.ts); or, with --soak, only the long soak (soak.ts). Every process
// runs in the run's namespaces and is stopped by PID; the namespaces are removed on success,
// failure, Ctrl-C and when the time budget runs out.
import * as path from 'path';
import { DirectPair } from '../test/lib/direct-pair';
import { Topology } from '../test/lib/netns';
import { NsSet } from '../test/lib/ns-set';
import { execSyncQuiet, sleep } from '../test/lib/proc';
import { statusMiB } from '../test/lib/procstat';
import { REPO } from '../test/lib/rsock';
import { busyPollFigures } from './busy-poll';
import { Instance, Instances } from './instances';
import { kcptunGoodput } from './kcptun';
import { Measure } from './measure';
import { CONF, HELP, Options, parseOptions } from './options';
import { printReport } from './report';
import { writeBenchmarks } from './report-doc';
import { context, Results } from './results';
import { routerPath } from './router';
import { Prober, Track } from './search';
import { runSoak } from './soak';
import { stopUdp2raw, udp2rawFigures } from './udp2raw';
import * as udpload from './udpload';
import { runWorkers, workersComparison, writeWorkers } from './workers';

const have = (cmd: string) => execSyncQuiet(['sh', '-c', `command -v ${cmd}`]).trim() !== '';

/** Session 1: instance A (10 ports, 1 flow) and B (10 other ports, 10k flows); every rate probe interleaved. */
async function session1(pair: DirectPair, r: Results, o: Options, prober: Prober, inst: Instances, measure: Measure): Promise<boolean> {
  r.say('direct: RTT (one in flight, then paced)');
  await prober.latency('direct', '', o.smoke);
  r.say(`tunnel: starting rsock A (ports 10001-10010, ludp :${CONF.ludp})`);
  const target = `127.0.0.1:${CONF.targetPort}`;
  const a = await inst.start('A', '10001-10010', target, CONF.ludp);
  const aReason = inst.reason;
  let b: Instance | undefined;
  let bReason = '';
  if (a && !o.smoke) {
    r.say(`tunnel: starting rsock B (ports 10011-10020, ludp :${CONF.ludp2}) for the 10k-flow figures`);
    b = await inst.start('B', '10011-10020', target, CONF.ludp2);
    bReason = inst.reason;
  }
  if (a) {
    await sleep(1000); // let every connection come up
    measure.idleRss(a);
    r.say('tunnel: RTT (one in flight, then paced)');
    await prober.latency('tunnel', '', o.smoke);
    if (!o.smoke && have('tcpdump')) {
      r.say('tunnel: header bytes (tcpdump)');
      await measure.headerBytes();
    } else if (!o.smoke) {
      r.missing('header_bytes', 'tcpdump not installed');
    }
    if (!o.smoke) {
      r.say('tunnel: CPU per datagram at 20k/s for 5 s');
      await measure.cpu(a);
    }
    if (b) {
      r.say('tunnel: RSS with 10k live flows (instance B)');
      await measure.rss10k(b);
    } else if (!o.smoke) {
      for (const k of ['rss_10k_client_mb', 'rss_10k_server_mb', 'tunnel_rate_10k']) r.missing(k, `second rsock instance: ${bReason}`);
    }
  } else {
    r.say(`tunnel: n/a: ${aReason}`);
    const rtt = ['rtt', 'rtt_paced'].flatMap((k) => ['p50', 'p99', 'p999'].map((q) => `${k}_tunnel_${q}_ms`));
    const keys = ['tunnel_rate', ...rtt, 'rss_idle_client_mb', 'rss_idle_server_mb'];
    if (!o.smoke) keys.push('cpu_us_per_dgram', 'rss_10k_client_mb', 'rss_10k_server_mb', 'tunnel_rate_10k', 'header_bytes');
    for (const k of keys) r.missing(k, aReason);
  }
  if (a) await busyPollFigures(r, prober, measure, inst, '', o.smoke);
  const u2r = await udp2rawFigures(pair, r, prober, measure, '', o.smoke, 50);
  const tracks: Track[] = [{ key: 'direct_rate', route: 'direct', flows: 1 }];
  if (a) tracks.push({ key: 'tunnel_rate', route: 'tunnel', flows: 1 });
  if (u2r.track) tracks.push(u2r.track);
  if (!o.smoke) {
    if (b) tracks.push({ key: 'tunnel_rate_10k', route: `tunnel:${CONF.ludp2}`, flows: 10000 });
    tracks.push({ key: 'direct_rate_10k', route: 'direct', flows: 10000 });
  }
  r.say(`datagrams/s, probes interleaved: ${tracks.map((t) => `${t.key},${t.route},${t.flows}`).join(' ')}`);
  await prober.search(o.smoke, tracks);
  if (u2r.u) await stopUdp2raw(u2r.u);
  if (a && !o.smoke) {
    // A separate search, so that the 1200 B figures above keep their own interleaving.
    r.say('datagrams/s of 4,000 B (rsock splits each into fragments; direct UDP is fragmented by IP), probes interleaved');
    await prober.search(false, [{ key: 'direct_rate_4k', route: 'direct', flows: 1, size: 4000 },
      { key: 'tunnel_rate_4k', route: 'tunnel', flows: 1, size: 4000 }]);
  } else if (!o.smoke) {
    r.missing('tunnel_rate_4k', aReason);
  }
  for (const i of [a, b]) {
    if (!i) continue;
    if (inst.ok(i)) {
      r.note(`rss_peak_client_mb_${i.name}`, statusMiB(i.client.pid, 'VmHWM') ?? 'n/a');
      r.note(`rss_peak_server_mb_${i.name}`, statusMiB(i.server.pid, 'VmHWM') ?? 'n/a');
    } else {
      r.note('rsock_note', 'an rsock process exited during the run (see its log)');
    }
    await inst.counters(i);
    await inst.stop(i);
  }
  return !!a;
}

/** Session 2: 1 port against 100 ports, two instances side by side, probes interleaved. */
async function session2(r: Results, prober: Prober, inst: Instances): Promise<void> {
  r.say(`tunnel: --ports=10001 (ludp :${CONF.ludp}) against --ports=10101-10200 (ludp :${CONF.ludp2})`);
  const target = `127.0.0.1:${CONF.targetPort}`;
  const p1 = await inst.start('P1', '10001', target, CONF.ludp);
  const p100 = p1 ? await inst.start('P100', '10101-10200', target, CONF.ludp2) : undefined;
  if (p1 && p100) {
    await sleep(1500);
    await prober.search(false, [{ key: 'tunnel_rate_1port', route: 'tunnel', flows: 1 },
      { key: 'tunnel_rate_100ports', route: `tunnel:${CONF.ludp2}`, flows: 1 }]);
  } else {
    r.missing('tunnel_rate_1port', inst.reason);
    r.missing('tunnel_rate_100ports', inst.reason);
  }
  for (const i of [p1, p100]) if (i) await inst.stop(i);
}

/** The other wire modes' header bytes (the default's is measured in session 1): one short instance each. */
export const MODES: Array<[string, string[]]> = [['none', ['--obfs=none']], ['tls_aead', ['--crypt=aead']], ['none_aead', ['--obfs=none', '--crypt=aead']]];
async function session3(r: Results, inst: Instances, measure: Measure): Promise<void> {
  for (const [mode, args] of MODES) {
    const key = `header_bytes_${mode}`;
    if (!have('tcpdump')) { r.missing(key, 'tcpdump not installed'); continue; }
    r.say(`tunnel: header bytes with ${args.join(' ')}`);
    const h = await inst.start(`H-${mode}`, '10001-10010', `127.0.0.1:${CONF.targetPort}`, CONF.ludp, args);
    if (!h) { r.missing(key, inst.reason); continue; }
    await sleep(1000);
    await measure.headerBytes(key);
    await inst.stop(h);
  }
}

async function run(o: Options, r: Results, pair: DirectPair, topo: Topology): Promise<number> {
  for (const t of ['ip', 'gcc', 'ss']) if (!have(t)) { console.error(`bench: missing ${t} (run scripts/setup.sh)`); return 1; }
  await udpload.buildUdpload();
  r.say(`namespaces ${pair.ns.client} / ${pair.ns.server}, logs in ${pair.logDir}`);
  await pair.up();
  await pair.exec('client', ['sysctl', '-qw', `net.ipv4.ip_local_reserved_ports=${CONF.sportBase}-${CONF.sportBase + 10999}`], { allowFail: true });
  await udpload.startServe(pair, `0.0.0.0:${CONF.targetPort}`, 900).catch((e: Error) => { throw new Error(`udpload serve did not start: ${e.message}`); });
  const reach = await udpload.ping(pair, 'client', `${pair.serverAddr}:${CONF.targetPort}`, 3, 0, 300, 3);
  if (reach.samples === 0) throw new Error(`${pair.serverAddr}:${CONF.targetPort} unreachable from the client ns`);
  context(r, o);
  const prober = new Prober(pair, r);
  const inst = new Instances(pair, r, `bench-${pair.id}`);
  const measure = new Measure(pair, r, prober, inst);
  await session1(pair, r, o, prober, inst, measure);
  if (!o.smoke) {
    await session2(r, prober, inst);
    await session3(r, inst, measure);
    await kcptunGoodput(pair, r, inst, measure, have);
    const lines = await workersComparison(r, prober, inst, measure);
    if (o.write) writeWorkers(r, lines);
  }
  await pair.destroy(); // one path at a time: the veth path's processes must not load the router path's figures
  await routerPath(o, r, topo, have);
  r.say('done');
  const rep = printReport(r, (x) => {
    if (!o.write) return;
    const file = path.join(REPO, 'BENCHMARKS.md');
    writeBenchmarks(file, r, x.table, x.notes);
    process.stdout.write(`\nwrote ${file}\n`);
  });
  if (!o.smoke) return 0;
  if (!r.has('direct_rate') || !r.has('rtt_direct_p50_ms')) return 1;
  if (!r.has('rtr_direct_rate') || !r.has('rtr_rtt_direct_p50_ms')) return 1;
  if (!r.has('tunnel_rate') || !r.has('rtt_tunnel_p50_ms') || !r.has('rtr_tunnel_rate') || !r.has('rtr_rtt_tunnel_p50_ms')) return 3;
  return rep ? 0 : 1;
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  if (typeof o === 'string') { console.error(o); return 1; }
  if (o.help) { console.log(HELP); return 0; }
  if (process.getuid?.() !== 0) { console.error('bench: needs root (network namespaces, raw sockets): sudo npm run bench'); return 1; }
  const r = new Results();
  const pair = new DirectPair({ logPrefix: 'rsock-bench' });
  const topo = new Topology({ logPrefix: 'rsock-bench' });
  const sets: Array<NsSet<string>> = [pair, topo];
  for (const s of sets) s.logPolicy = o.keep ? 'keep' : 'discard';
  const abort = (why: string) => {
    try { process.stderr.write(`bench: ${why}\n`); } catch { /* stderr closed */ }
    for (const s of sets) s.destroySync();
    if (o.keep) try { process.stderr.write(`bench: logs kept in ${sets.map((s) => s.logDir).join(' ')}\n`); } catch { /* stderr closed */ }
    process.exit(130);
  };
  // Registered before the harness's own hooks (up()), so these run first.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => abort('interrupted'));
  const budget = o.soak ? o.soak * 60 + CONF.soakSlack : o.smoke ? CONF.budgetSmoke : o.workers ? CONF.budgetWorkers : CONF.budgetFull;
  const watchdog = setTimeout(() => abort(`out of time (${budget} s budget)`), budget * 1000);
  try {
    if (o.workers) return await runWorkers(o, r, pair);
    return o.soak ? await runSoak(o, r, topo) : await run(o, r, pair, topo);
  } catch (e) {
    console.error(`bench: ${e instanceof Error ? e.message : e}`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    for (const s of sets) await s.destroy();
  }
}

main().then((code) => process.exit(code), (e) => { console.error(e); process.exit(1); });
