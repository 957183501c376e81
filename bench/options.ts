// Command line and fixed settings of the benchmark (bench/main.ts).
export const HELP = `rsock benchmark: direct UDP (baseline) against the same traffic through rsock, in one run.

  sudo npm run bench                  full run (< 5 min), prints the table, updates BENCHMARKS.md
  sudo npm run bench -- --smoke       a few seconds: one direct + one tunnel rate probe and a short
  (or: sudo bash scripts/bench.sh --smoke, sudo node dist/bench/main.js --smoke)
                                      RTT; prints the same table; does not touch BENCHMARKS.md
  options: --no-write (full run without updating BENCHMARKS.md), --keep (keep the logs folder)

It builds two private network namespaces joined by one veth pair (MTU 1500, no router), with the
harness of the integration tests (test/lib/direct-pair.ts):
  client ns rsk-<id>-cli 10.202.0.1/24  <-- veth -->  server ns rsk-<id>-srv 10.202.0.2/24
Load comes from bench/udpload.c (compiled here with gcc -O2 into bench/build/), and from iperf3
over kcptun. The last output line is "BENCH_JSON {...}" for machines.

RSOCK_SERVER_BIN / RSOCK_CLIENT_BIN (environment) point it at other builds of the programs.

Exit status: 0 numbers came out (smoke: direct and tunnel); 3 smoke: the baseline came out but
the tunnel did not (rsock not working); 1 setup failure; 130 interrupted (or out of time).`;

export interface Options {
  smoke: boolean;
  write: boolean;
  keep: boolean;
  help: boolean;
  /** How the run was started, as shown in the report ("npm run bench", "node dist/bench/main.js --smoke"...). */
  command: string;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): Options | string {
  const o: Options = { smoke: false, write: true, keep: false, help: false, command: '' };
  for (const a of argv) {
    if (a === '--smoke') { o.smoke = true; o.write = false; }
    else if (a === '--no-write') o.write = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '-h' || a === '--help') o.help = true;
    else return `bench: unknown argument ${a} (try --help)`;
  }
  const args = argv.join(' ');
  if (env.npm_lifecycle_event === 'bench') o.command = `npm run bench${args ? ` -- ${args}` : ''}`;
  else o.command = `${env.RSOCK_BENCH_VIA || 'node dist/bench/main.js'}${args ? ` ${args}` : ''}`;
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
  /** Whole-run time limit, seconds. */
  budgetSmoke: 60,
  budgetFull: 285,
} as const;
