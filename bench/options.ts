// Command line and fixed settings of the benchmark (bench/main.ts).
export const HELP = `rsock benchmark: direct UDP (baseline) against the same traffic through rsock, in one run.

  sudo npm run bench                  full run (about 5 min), prints the table, updates BENCHMARKS.md
  sudo npm run bench -- --smoke       under a minute: on both paths one direct + one tunnel rate
  (or: sudo bash scripts/bench.sh --smoke, sudo node dist/bench/main.js --smoke)
                                      probe and a short RTT; prints the same table; writes nothing
  sudo npm run bench -- --soak[=MIN]  only the long soak (default 15 minutes) through the router
                                      path: 5,000 datagrams/s over 200 changing flows, delivered %,
                                      RSS and open fds; updates its own section of BENCHMARKS.md
  sudo npm run bench -- --workers     only --workers=1 against --workers=2 on the veth path (also
                                      part of the full run); updates its own section of BENCHMARKS.md
  options: --no-write (run without updating BENCHMARKS.md), --keep (keep the logs folder)

It measures on two paths, one after the other, with the harness of the integration tests (test/lib):
  veth path (direct-pair.ts): client ns rsk-<id>-cli 10.202.0.1/24 <-- veth --> server ns 10.202.0.2/24
  router path (netns.ts Topology): client ns 10.201.1.2 <-- veth --> router ns (strict conntrack,
    ct state invalid drop, masquerade) <-- veth --> server ns 10.201.2.2; MTU 1500 everywhere
Load comes from bench/udpload.c (compiled here with gcc -O2 into bench/build/), and from iperf3
over kcptun. The last output line is "BENCH_JSON {...}" for machines.

RSOCK_SERVER_BIN / RSOCK_CLIENT_BIN (environment) point it at other builds of the programs.
RSOCK_BENCH_UDP2RAW=/path/to/udp2raw adds udp2raw (faketcp, no crypto) on both paths as a
comparison (RTT, CPU, rate; no targets). It is not packaged: build it outside this repository.

Exit status: 0 numbers came out (smoke: direct and tunnel on both paths; soak: the load's result
and both processes' samples); 3 smoke: the baseline came out but the tunnel did not (rsock not
working); 1 setup failure; 130 interrupted (or out of time).`;

export interface Options {
  smoke: boolean;
  /** Minutes of the soak; 0: no soak (the benchmark). */
  soak: number;
  /** Only the --workers=1 / --workers=2 comparison (bench/workers.ts). */
  workers: boolean;
  write: boolean;
  keep: boolean;
  help: boolean;
  /** How the run was started, as shown in the report ("npm run bench", "node dist/bench/main.js --smoke"...). */
  command: string;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): Options | string {
  const o: Options = { smoke: false, soak: 0, workers: false, write: true, keep: false, help: false, command: '' };
  for (const a of argv) {
    const soak = /^--soak(?:=(.*))?$/.exec(a);
    if (a === '--smoke') { o.smoke = true; o.write = false; }
    else if (soak) {
      o.soak = soak[1] === undefined ? 15 : Number(soak[1]);
      if (!(o.soak > 0 && o.soak <= 24 * 60)) return `bench: --soak=MINUTES wants a number of minutes (got ${soak[1]})`;
    }
    else if (a === '--workers') o.workers = true;
    else if (a === '--no-write') o.write = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '-h' || a === '--help') o.help = true;
    else return `bench: unknown argument ${a} (try --help)`;
  }
  if ([o.soak > 0, o.smoke, o.workers].filter(Boolean).length > 1) return 'bench: --soak, --smoke and --workers are separate runs: give one';
  const args = argv.join(' ');
  // udp2raw's rows come from the environment, so the command shown must say so
  const u2r = env.RSOCK_BENCH_UDP2RAW ? `RSOCK_BENCH_UDP2RAW=${env.RSOCK_BENCH_UDP2RAW} ` : '';
  if (env.npm_lifecycle_event === 'bench') o.command = `${u2r}npm run bench${args ? ` -- ${args}` : ''}`;
  else o.command = `${u2r}${env.RSOCK_BENCH_VIA || 'node dist/bench/main.js'}${args ? ` ${args}` : ''}`;
  return o;
}

/** Addresses, ports and budgets (the same as the bash version of the benchmark had). */
export const CONF = {
  targetPort: 9000,
  kcpPort: 4000,
  iperfPort: 5201,
  kcpLocalDirect: 12948,
  kcpLocalTunnel: 12949,
  ludp: 30000,
  ludp2: 30002,
  /** App flows use source ports from here (reserved in the client ns so nothing else takes them). */
  sportBase: 40000,
  /** The paced RTT variant: one ping every 1/pacedRate s (a steady stream, like a call or a game). */
  pacedRate: 2000,
  /** Whole-run time limit, seconds (the soak's is its length plus soakSlack). */
  budgetSmoke: 60,
  budgetFull: 680,
  budgetWorkers: 240,
  soakSlack: 120,
} as const;
