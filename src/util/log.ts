// Plain, timestamped log lines for people: "2026-11-23T10:00:00.000Z INFO  conn up ...", or with
// --log-format=json one object per line for log shippers: {"time":"...","level":"info","msg":"conn up ..."}.
import * as fs from 'fs';

export type Level = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'text' | 'json';
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class Logger {
  private fd: number | null = null;
  private readonly lastRate = new Map<string, number>();
  /** When set, lines go here instead of the file or stderr (tests read what a person would read). */
  sink: ((line: string) => void) | null = null;
  /** When set, messages go here unformatted: a worker thread hands them to the main thread's logger. */
  forward: ((level: Level, msg: string) => void) | null = null;

  private file: string | null = null;

  constructor(private level: Level = 'info', file?: string, private readonly format: LogFormat = 'text') {
    if (file) this.setFile(file);
  }

  setFile(file: string): void {
    this.closeFile();
    this.fd = fs.openSync(file, 'a');
    this.file = file;
  }

  /**
   * Opens the log file again by its name (after logrotate moved it away), keeping the old one when the
   * new one cannot be opened. Returns the error, or null. Without a file (stderr) there is nothing to do.
   */
  reopen(): string | null {
    if (this.file === null) return null;
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'a');
    } catch (e) {
      return `cannot reopen ${this.file}: ${(e as Error).message}`;
    }
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = fd;
    return null;
  }

  get currentLevel(): Level {
    return this.level;
  }

  setLevel(level: Level): void {
    this.level = level;
  }

  enabled(level: Level): boolean {
    return RANK[level] <= RANK[this.level];
  }

  private write(level: Level, msg: string): void {
    if (!this.enabled(level)) return;
    if (this.forward) return this.forward(level, msg);
    const time = new Date().toISOString();
    const line = this.format === 'json' ? `${JSON.stringify({ time, level, msg })}\n` : `${time} ${level.toUpperCase().padEnd(5)} ${msg}\n`;
    if (this.sink) this.sink(line);
    else if (this.fd !== null) fs.writeSync(this.fd, line);
    else process.stderr.write(line);
  }

  error(msg: string): void {
    this.write('error', msg);
  }
  warn(msg: string): void {
    this.write('warn', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  debug(msg: string): void {
    this.write('debug', msg);
  }

  /** At most one line per `key` every `everyMs`, for things that can happen per packet. */
  rateLimited(level: Level, key: string, everyMs: number, msg: string): void {
    const now = Date.now();
    const last = this.lastRate.get(key) ?? 0;
    if (now - last < everyMs) return;
    this.lastRate.set(key, now);
    this.write(level, msg);
  }

  closeFile(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    this.file = null;
  }
}
