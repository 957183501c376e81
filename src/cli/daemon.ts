// --daemon=1: the parent starts a detached copy of itself and waits until that copy says it is ready
// (or failed), then exits 0 (or 1 with the child's error). Node cannot fork, so this is the way.
import { spawn } from 'child_process';
import * as fs from 'fs';

const CHILD_ENV = 'RSOCK_DAEMON_CHILD';
const READY_TIMEOUT_MS = 30000;

export function isDaemonChild(): boolean {
  return process.env[CHILD_ENV] === '1';
}

export type ChildMessage = { ready: true; pid: number } | { error: string };

/** Parent side. Resolves with the exit code the parent should use. */
export function spawnDaemon(name: string, logFile: string, pidFile: string): Promise<number> {
  let out: number;
  try {
    out = fs.openSync(logFile, 'a');
  } catch (e) {
    process.stderr.write(`${name}: --log ${logFile}: ${(e as Error).message}\n`);
    return Promise.resolve(2);
  }
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...process.argv.slice(2)], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  fs.closeSync(out);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      process.stderr.write(`${name}: the daemon did not become ready within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}\n`);
      child.kill('SIGTERM');
      resolve(1);
    }, READY_TIMEOUT_MS);
    child.on('message', (m: ChildMessage) => {
      clearTimeout(timer);
      if ('ready' in m) {
        process.stdout.write(`${name} running in the background, pid ${m.pid}; pid file ${pidFile}, log ${logFile}\n`);
        child.disconnect();
        child.unref();
        resolve(0);
      } else {
        process.stderr.write(`${name}: ${m.error}\n`);
        resolve(1);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      process.stderr.write(`${name}: the daemon exited (status ${code}) before it was ready; see ${logFile}\n`);
      resolve(1);
    });
  });
}

/** Child side: tell the parent, then cut the channel so the parent can exit. */
export function tellParent(m: ChildMessage): void {
  if (process.send) {
    process.send(m);
    if (process.connected) process.disconnect();
  }
}
