// What a benchmark run collects: figures, reasons why figures are missing, context for the report,
// the rate probes (one line each) and the rsock command lines used.
import * as os from 'os';
import { execSyncQuiet } from '../test/lib/proc';
import { REPO } from '../test/lib/rsock';
import type { Options } from './options';
export class Results {
  /** key -> figure */
  readonly m: Record<string, number> = {};
  /** key -> why the figure is missing */
  readonly na: Record<string, string> = {};
  /** key -> context for the report */
  readonly info: Record<string, string> = {};
  readonly probes: string[] = [];
  readonly commands: string[] = [];
  private readonly t0 = Date.now();

  res(k: string, v: number | undefined): void {
    if (v !== undefined && Number.isFinite(v)) { this.m[k] = v; delete this.na[k]; }
    else this.na[k] ??= `not a number: ${v}`;
  }
  missing(k: string, why: string): void { this.na[k] = why; }
  note(k: string, v: string | number): void { this.info[k] = String(v); }
  has(k: string): boolean { return typeof this.m[k] === 'number'; }

  /** Seconds since the start of the run, one decimal. */
  elapsed(): string { return ((Date.now() - this.t0) / 1000).toFixed(1); }
  say(s: string): void { process.stderr.write(`[bench ${this.elapsed().padStart(5)}s] ${s}\n`); }
}

/** Parses "a=1 b=x c=2.5" (udpload's output) into a map. */
export function kv(text: string): Record<string, string> {
  const res: Record<string, string> = {};
  for (const m of text.matchAll(/([a-z0-9_]+)=(\S*)/g)) res[m[1]] ??= m[2];
  return res;
}

/** The most telling line of a log: its last error line, else its last non-empty line, without a timestamp. */
export function lastLine(text: string): string {
  const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('### '));
  const err = lines.filter((l) => /error|cannot|failed|not found/i.test(l)).pop();
  return (err ?? lines.pop() ?? '').replace(/^\d{4}-\d{2}-\d{2}T[0-9:.]+Z? +/, '').slice(0, 160);
}

/** The run's context for the report: mode, date, kernel, CPU, command, rsock commit. */
export function context(r: Results, o: Options): void {
  const cpu = os.cpus();
  const dirty = execSyncQuiet(['git', '-C', REPO, 'status', '--porcelain']).trim() ? '+dirty' : '';
  r.note('mode', o.soak ? `soak ${o.soak} min` : o.smoke ? 'smoke' : 'full');
  r.note('date', new Date().toISOString().replace(/T(\d\d:\d\d).*$/, ' $1 UTC'));
  r.note('kernel', os.release());
  r.note('cpu', `${(cpu[0]?.model ?? '?').trim()} (${cpu.length} cores)`);
  r.note('command', o.command);
  r.note('rsock_commit', `${execSyncQuiet(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD']).trim() || 'unknown'}${dirty}`);
}
