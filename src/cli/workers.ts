// The main thread's side of --workers: starts the worker threads (worker.ts), writes their log lines
// (prefixed w1, w2, ...), sums their status and counters, stops them. A worker that dies ends the
// process (exit 1): the other workers' share of the flows would otherwise be dropped without a word,
// and a supervisor (systemd Restart=) brings the whole process back with every reuseport group whole.
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { Status } from '../ops/status';
import { mergeStatus, sumStats } from '../ops/status-merge';
import type { ClientConfig } from '../tunnel/client';
import type { NativeIoOptions } from '../io/native-io';
import type { ServerConfig } from '../tunnel/server';
import type { Level, Logger } from '../util/log';

export interface WorkerInit {
  index: number;
  level: Level;
  client?: ClientConfig;
  server?: ServerConfig;
  /** The worker's own addon handles are opened with these (--decoy, --busy-poll). */
  io: NativeIoOptions;
}

export type ToWorker = { t: 'stop' } | { t: 'status' | 'stats'; id: number };
export type ToMain =
  | { t: 'log'; level: Level; msg: string }
  | { t: 'ready'; up: boolean }
  | { t: 'error'; msg: string }
  | { t: 'reply'; id: number; value: unknown }
  | { t: 'stopped'; stats: Record<string, number> };

/** A worker that does not answer a request or a stop within this long is given up on. */
const REPLY_TIMEOUT_MS = 5000;

class Thread {
  readonly worker: Worker;
  private readonly waiting = new Map<number, (v: unknown) => void>();
  private nextId = 1;
  ready: Promise<boolean>;
  stopped: Promise<Record<string, number>> | null = null;
  private onStopped: ((s: Record<string, number>) => void) | null = null;
  exited = false;

  constructor(readonly name: string, init: WorkerInit, log: Logger, onFatal: (msg: string) => void) {
    this.worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: init });
    let started = false;
    this.ready = new Promise<boolean>((resolve, reject) => {
      this.worker.on('message', (m: ToMain) => {
        if (m.t === 'log') log[m.level](`${name} ${m.msg}`);
        else if (m.t === 'ready') {
          started = true;
          resolve(m.up);
        } else if (m.t === 'reply') {
          this.waiting.get(m.id)?.(m.value);
          this.waiting.delete(m.id);
        } else if (m.t === 'stopped') this.onStopped?.(m.stats);
        else if (m.t === 'error') {
          if (started) log.error(`${name} ${m.msg}`);
          else reject(new Error(m.msg));
        }
      });
      this.worker.on('error', (e) => (started ? onFatal(`${name} failed: ${e.stack ?? e.message}`) : reject(e)));
      this.worker.on('exit', (code) => {
        this.exited = true;
        if (!started) reject(new Error(`${name} exited (code ${code}) before it was ready`));
        else if (!this.stopped) onFatal(`${name} exited (code ${code})`);
      });
    });
  }

  ask<T>(t: 'status' | 'stats'): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name} did not answer`));
      }, REPLY_TIMEOUT_MS);
      this.waiting.set(id, (v) => {
        clearTimeout(timer);
        resolve(v as T);
      });
      this.worker.postMessage({ t, id } satisfies ToWorker);
    });
  }

  /** Stops the tunnel in the thread (its peers are told), then ends the thread; resolves with its last counters. */
  stop(): Promise<Record<string, number>> {
    this.stopped ??= new Promise<Record<string, number>>((resolve) => {
      const done = (s: Record<string, number>) => {
        clearTimeout(timer);
        void this.worker.terminate().then(() => resolve(s));
      };
      const timer = setTimeout(() => done({}), REPLY_TIMEOUT_MS);
      this.onStopped = done;
      if (this.exited) done({});
      else this.worker.postMessage({ t: 'stop' } satisfies ToWorker);
    });
    return this.stopped;
  }
}

export class WorkerTunnel {
  private readonly threads: Thread[];
  private final: Record<string, number>[] | null = null;

  /** `inits[k]` is worker k's configuration; `onFatal` runs when a worker dies after start. */
  constructor(inits: WorkerInit[], private readonly log: Logger, onFatal: (msg: string) => void) {
    this.threads = inits.map((init) => new Thread(`w${init.index + 1}`, init, log, onFatal));
  }

  /** Resolves when every worker runs, with whether every client worker has a connection up; throws the first failure. */
  async start(): Promise<boolean> {
    const ready = await Promise.allSettled(this.threads.map((t) => t.ready));
    const failed = ready.find((r) => r.status === 'rejected');
    if (failed) {
      await this.stop();
      throw (failed as PromiseRejectedResult).reason;
    }
    return ready.every((r) => (r as PromiseFulfilledResult<boolean>).value);
  }

  async status(): Promise<Status> {
    return mergeStatus(await Promise.all(this.threads.map((t) => t.ask<Status>('status'))));
  }

  /** Summed counters; each worker's own are logged too (SIGUSR2), so that the share of each shows. */
  async stats(): Promise<Record<string, number>> {
    const parts = this.final ?? (await Promise.all(this.threads.map((t) => t.ask<Record<string, number>>('stats'))));
    if (!this.final) parts.forEach((p, k) => this.log.info(`${this.threads[k].name} counters: ${formatStats(p)}`));
    return sumStats(parts);
  }

  async stop(): Promise<void> {
    this.final = await Promise.all(this.threads.map((t) => t.stop()));
    this.final.forEach((p, k) => this.log.info(`${this.threads[k].name} stopped; counters: ${formatStats(p)}`));
  }
}

export function formatStats(s: Record<string, number>): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
