// Plain, timestamped log lines for people: "2026-11-23T10:00:00.000Z INFO  conn up ...".
import * as fs from 'fs';

export type Level = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class Logger {
  private fd: number | null = null;
  private readonly lastRate = new Map<string, number>();
  /** When set, lines go here instead of the file or stderr (tests read what a person would read). */
  sink: ((line: string) => void) | null = null;

  constructor(private level: Level = 'info', file?: string) {
    if (file) this.fd = fs.openSync(file, 'a');
  }

  setFile(file: string): void {
    this.closeFile();
    this.fd = fs.openSync(file, 'a');
  }

  setLevel(level: Level): void {
    this.level = level;
  }

  enabled(level: Level): boolean {
    return RANK[level] <= RANK[this.level];
  }

  private write(level: Level, msg: string): void {
    if (!this.enabled(level)) return;
    const line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}\n`;
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
  }
}
