// Process helpers for the integration harness: bounded exec, spawned processes tracked by PID,
// bounded polling. Nothing here waits without a time limit.
import { spawn as cpSpawn, ChildProcess, execFileSync } from 'child_process';
import * as fs from 'fs';
import { EventEmitter } from 'events';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ExecResult { code: number | null; signal: string | null; stdout: string; stderr: string }
export interface ExecOptions {
  /** Kill (SIGKILL) the command after this long. Default 20 s. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Do not throw on a non-zero exit. */
  allowFail?: boolean;
  /** Working directory (default: this process's). */
  cwd?: string;
}

/** Runs a command to completion with a hard time limit. Throws on failure unless allowFail. */
export function exec(cmd: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = cpSpawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], cwd: opts.cwd });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`${cmd.join(' ')}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const res: ExecResult = { code, signal, stdout, stderr };
      if (timedOut) return reject(new Error(`timed out after ${timeoutMs} ms: ${cmd.join(' ')}\n${stderr}`));
      if (code !== 0 && !opts.allowFail) {
        return reject(new Error(`exit ${code ?? signal}: ${cmd.join(' ')}\n${stderr.trim()}\n${stdout.trim()}`.trim()));
      }
      resolve(res);
    });
    child.stdin!.on('error', () => { /* the command may not read stdin */ });
    child.stdin!.end(opts.input ?? '');
  });
}

/** Synchronous variant for exit hooks. Never throws. */
export function execSyncQuiet(cmd: string[], timeoutMs = 5000): string {
  try {
    return execFileSync(cmd[0], cmd.slice(1), { timeout: timeoutMs, stdio: ['ignore', 'pipe', 'ignore'], killSignal: 'SIGKILL' }).toString();
  } catch {
    return '';
  }
}

/** True if the PID exists and is not a zombie. */
/** Every thread of a running process on these CPUs (taskset -a -p -c LIST). */
export async function pinProcess(pid: number, cpus: string): Promise<void> {
  await exec(['taskset', '-a', '-p', '-c', cpus, String(pid)], { timeoutMs: 5000 });
}

export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function signalPid(pid: number, sig: NodeJS.Signals): boolean {
  try { process.kill(pid, sig); return true; } catch { return false; }
}

/**
 * Polls `fn` every `intervalMs` until it returns a truthy value or `timeoutMs` passes.
 * Returns the value, or undefined on timeout. Bounded in time and in number of calls.
 */
export async function pollUntil<T>(fn: () => T | Promise<T>, timeoutMs: number, intervalMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  const maxIter = Math.ceil(timeoutMs / Math.max(1, intervalMs)) + 2;
  for (let i = 0; i < maxIter; i++) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  return undefined;
}

/** Stops a process that is not our child (e.g. a daemon): SIGTERM, bounded wait, SIGKILL. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!isAlive(pid)) return;
  signalPid(pid, 'SIGTERM');
  if (await pollUntil(() => !isAlive(pid), graceMs, 50)) return;
  signalPid(pid, 'SIGKILL');
  await pollUntil(() => !isAlive(pid), 2000, 50);
}

export interface SpawnOptions {
  /** Short name used in diagnostics and the log file name. */
  name: string;
  /** Directory for the log file (stdout and stderr, interleaved, with the command line on top). */
  logDir: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * A spawned process, tracked by PID. Its stdout and stderr are kept in memory (for waitFor and
 * diagnostics) and appended to a log file. stop() is bounded: SIGTERM, then SIGKILL.
 */
export class Proc {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly cmd: string[];
  exitCode: number | null = null;
  exitSignal: string | null = null;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<void>;
  private out = '';
  private stdoutText = '';
  private readonly child: ChildProcess;
  private readonly events = new EventEmitter();
  private done = false;

  constructor(cmd: string[], opts: SpawnOptions) {
    this.name = opts.name;
    this.cmd = cmd;
    this.logPath = `${opts.logDir}/${opts.name}.log`;
    fs.mkdirSync(opts.logDir, { recursive: true });
    fs.appendFileSync(this.logPath, `### ${new Date().toISOString()} ${cmd.join(' ')}\n`);
    this.child = cpSpawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    this.events.setMaxListeners(100);
    if (this.child.pid === undefined) {
      // spawn failures are reported through 'error'; keep a sentinel pid.
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    const onData = (isStdout: boolean) => (d: Buffer) => {
      const s = d.toString();
      this.out += s;
      if (isStdout) this.stdoutText += s;
      if (this.out.length > 8 << 20) this.out = this.out.slice(-(4 << 20));
      try { fs.appendFileSync(this.logPath, s); } catch { /* log dir removed during teardown */ }
      this.events.emit('data');
    };
    this.child.stdout!.on('data', onData(true));
    this.child.stderr!.on('data', onData(false));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.out += `\n[spawn error] ${e.message}\n`;
        this.done = true;
        this.events.emit('data');
        resolve();
      });
      this.child.on('close', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        this.done = true;
        try { fs.appendFileSync(this.logPath, `### exited code=${code} signal=${signal}\n`); } catch { /* ignore */ }
        this.events.emit('data');
        resolve();
      });
    });
  }

  get running(): boolean { return !this.done && this.pid > 0 && isAlive(this.pid); }
  /** Everything written so far to stdout and stderr, interleaved. */
  output(): string { return this.out; }
  /** Only stdout (used by helper scripts that print JSON results there). */
  stdout(): string { return this.stdoutText; }
  /** A position in output(), for waitFor(re, ms, mark) to see only later output. */
  mark(): number { return this.out.length; }
  tail(lines = 40): string { return this.out.split('\n').slice(-lines).join('\n'); }

  /**
   * Resolves with the first line of output (from `since`) matching `re`. Rejects on timeout or if
   * the process exits without printing it.
   */
  waitFor(re: RegExp, timeoutMs: number, since = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: Error | null, line?: string) => {
        if (timer) clearTimeout(timer);
        this.events.off('data', check);
        if (err) reject(err); else resolve(line!);
      };
      const check = () => {
        const text = this.out.slice(since);
        const lines = text.split('\n');
        // The last element may be a partial line; only match it once the process has ended.
        const complete = this.done ? lines : lines.slice(0, -1);
        const hit = complete.find((l) => re.test(l));
        if (hit !== undefined) return finish(null, hit);
        if (this.done) {
          finish(new Error(`${this.name} exited (code=${this.exitCode} signal=${this.exitSignal}) before printing ${re}\n--- ${this.name} output (tail) ---\n${this.tail()}`));
        }
      };
      timer = setTimeout(() => finish(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n--- ${this.name} output (tail) ---\n${this.tail()}`)), timeoutMs);
      this.events.on('data', check);
      check();
    });
  }

  /** Resolves true if the process exits within timeoutMs. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    if (this.done) return true;
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<boolean>((r) => { timer = setTimeout(() => r(false), timeoutMs); });
    const res = await Promise.race([this.exited.then(() => true), t]);
    clearTimeout(timer);
    return res;
  }

  signal(sig: NodeJS.Signals): boolean {
    if (this.done || this.pid <= 0) return false;
    return signalPid(this.pid, sig);
  }

  /** SIGTERM (or `sig`), wait up to graceMs, then SIGKILL and wait up to 2 s more. */
  async stop(graceMs = 3000, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.done || this.pid <= 0) return;
    this.signal(sig);
    if (await this.waitExit(graceMs)) return;
    this.signal('SIGKILL');
    await this.waitExit(2000);
  }

  /** Synchronous SIGKILL for exit hooks. */
  killNow(): void {
    if (!this.done && this.pid > 0) signalPid(this.pid, 'SIGKILL');
  }

  /** Parses every stdout line that is a JSON object. */
  jsonLines<T = Record<string, unknown>>(): T[] {
    const res: T[] = [];
    for (const l of this.stdoutText.split('\n')) {
      const s = l.trim();
      if (!s.startsWith('{')) continue;
      try { res.push(JSON.parse(s) as T); } catch { /* partial line */ }
    }
    return res;
  }
}
