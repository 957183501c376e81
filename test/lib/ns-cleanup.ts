// Cleanup of the harness's network namespaces: marker files of live namespace sets, removal of
// namespaces left by runs that died (sweepStale), and the exit/signal hooks that tear down every
// live set when the process ends. Everything here is synchronous and bounded in time.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execSyncQuiet, isAlive, signalPid } from './proc';

/** Where marker files of live namespace sets are kept (tmpfs: gone after a reboot, like the namespaces). */
export const MARKER_DIR = '/run/rsock-test';
/** Prefix of every namespace this harness creates (tests, demo and benchmark). */
export const NS_PREFIX = 'rsk-';

/** Something that can tear itself down synchronously (a namespace set). */
export interface SyncDestroyable { destroySync(): void }

const live = new Set<SyncDestroyable>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => { for (const t of [...live]) t.destroySync(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const t of [...live]) t.destroySync();
      process.exit(128 + (os.constants.signals[sig] ?? 1));
    });
  }
}

/** Registers a live set: it is destroyed at process exit and on SIGINT/SIGTERM/SIGHUP. */
export function registerLive(t: SyncDestroyable): void {
  installExitHooks();
  live.add(t);
}

export function unregisterLive(t: SyncDestroyable): void {
  live.delete(t);
}

/** Records that this process owns `namespaces`, so a later run can remove them if it dies. */
export function writeMarker(id: string, namespaces: string[]): void {
  fs.mkdirSync(MARKER_DIR, { recursive: true });
  fs.writeFileSync(path.join(MARKER_DIR, `${id}.json`), JSON.stringify({ pid: process.pid, namespaces }));
}

export function removeMarker(id: string): void {
  try { fs.unlinkSync(path.join(MARKER_DIR, `${id}.json`)); } catch { /* already gone */ }
}

export function nsExists(ns: string): boolean {
  return fs.existsSync(`/run/netns/${ns}`);
}

/** PIDs of the processes in a namespace (never this process). */
export function nsPidsSync(ns: string): number[] {
  if (!nsExists(ns)) return [];
  return execSyncQuiet(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number).filter((p) => p > 0 && p !== process.pid);
}

export function killNsPidsSync(ns: string): void {
  for (const pid of nsPidsSync(ns)) signalPid(pid, 'SIGKILL');
}

/** Deletes namespaces left by harness runs whose process is gone (e.g. killed with SIGKILL). */
export function sweepStale(): string[] {
  const removed: string[] = [];
  let files: string[] = [];
  try { files = fs.readdirSync(MARKER_DIR); } catch { return removed; }
  for (const f of files) {
    const p = path.join(MARKER_DIR, f);
    let m: { pid: number; namespaces: string[] };
    try { m = JSON.parse(fs.readFileSync(p, 'utf8')); } catch { continue; }
    if (isAlive(m.pid)) continue;
    for (const ns of m.namespaces) {
      killNsPidsSync(ns);
      execSyncQuiet(['ip', 'netns', 'del', ns]);
      removed.push(ns);
    }
    try { fs.unlinkSync(p); } catch { /* raced with another sweeper */ }
  }
  return removed;
}
