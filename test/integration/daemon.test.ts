// Daemon mode: --daemon=1 --pidfile=F --log=F returns 0 once ready, the pidfile holds the PID of a
// live process in the right namespace, the tunnel works, and SIGUSR1 (also SIGTERM, SIGINT) stops
// it with the pidfile removed and no process left behind. SIGHUP reopens the log file, as logrotate
// needs, and --log-format=json writes one JSON object per line.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn } from 'child_process';
import { Role, Topology } from '../lib/netns';
import { exec, isAlive, pollUntil, signalPid } from '../lib/proc';
import { clientArgs, LOG, READY_TIMEOUT_MS, serverArgs } from '../lib/rsock';
import { startUdpEcho, udpEcho, untilEcho } from '../lib/traffic';

const topo = new Topology();
let echoPid = 0;
before(topo.guard(async () => {
  await topo.up();
  echoPid = (await startUdpEcho(topo)).pid;
}));
after(() => topo.destroy());

interface Daemon { pid: number; pidfile: string; log: string }

/**
 * Runs the launching command until it exits. Its stdout/stderr go to a file, not a pipe, so a
 * daemon that keeps the inherited descriptors open cannot make us wait.
 */
async function runToExit(cmd: string[], outFile: string, timeoutMs: number): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const fd = fs.openSync(outFile, 'w');
  try {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', fd, fd] });
    const res = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); }, timeoutMs);
      child.on('error', () => { clearTimeout(timer); resolve({ code: null, signal: 'spawn-error' }); });
      child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal }); });
    });
    return { ...res, stderr: fs.readFileSync(outFile, 'utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

async function startDaemon(role: 'client' | 'server', tag: string, extra: string[] = []): Promise<Daemon> {
  const pidfile = path.join(topo.logDir, `${role}-${tag}.pid`);
  const log = path.join(topo.logDir, `${role}-${tag}-daemon.log`);
  const base = role === 'server' ? serverArgs(topo, { keepalive: 2 }) : clientArgs(topo, { keepalive: 2 });
  const t0 = Date.now();
  const r = await runToExit(['ip', 'netns', 'exec', topo.ns[role], ...base, '--daemon=1', `--pidfile=${pidfile}`, `--log=${log}`, ...extra],
    path.join(topo.logDir, `${role}-${tag}-launcher.out`), READY_TIMEOUT_MS + 5000);
  // Adopt the PID before any assertion, so destroy() stops it whatever happens.
  const pid = fs.existsSync(pidfile) ? Number(fs.readFileSync(pidfile, 'utf8').trim()) : 0;
  if (pid > 0) topo.adopt(pid);
  const logText = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '(no log file)';
  assert.equal(r.code, 0, `rsock-${role} --daemon=1 exited with ${r.code ?? r.signal}\n${r.stderr}\n${logText}`);
  assert.ok(pid > 0, `pidfile ${pidfile} missing or empty after the command returned`);
  assert.ok(isAlive(pid), `daemon pid ${pid} is not running`);
  const ns = (await exec(['ip', 'netns', 'identify', String(pid)])).stdout.trim();
  assert.equal(ns, topo.ns[role], `daemon runs in namespace "${ns}"`);
  assert.match(logText, LOG.ready, 'daemon log has no "ready" line although the command returned');
  console.log(`daemon: rsock-${role} returned 0 after ${Date.now() - t0} ms, pid ${pid}`);
  return { pid, pidfile, log };
}

async function stopDaemon(d: Daemon, sig: NodeJS.Signals): Promise<void> {
  const t0 = Date.now();
  assert.ok(signalPid(d.pid, sig), `could not signal ${d.pid}`);
  const gone = await pollUntil(() => !isAlive(d.pid), 5000, 50);
  assert.ok(gone, `daemon ${d.pid} still running 5 s after ${sig}`);
  const rmd = await pollUntil(() => !fs.existsSync(d.pidfile), 1000, 50);
  console.log(`daemon: pid ${d.pid} stopped ${Date.now() - t0} ms after ${sig}`);
  assert.ok(rmd, `pidfile ${d.pidfile} left behind after ${sig}`);
}

async function leftovers(role: Role): Promise<number[]> {
  return (await topo.pids(role)).filter((p) => p !== echoPid);
}

test('server and client daemons start, carry traffic and stop on SIGUSR1', { timeout: 60_000 }, topo.guard(async () => {
  const srv = await startDaemon('server', 'a');
  const cli = await startDaemon('client', 'a');
  const first = await untilEcho(topo, 10_000);
  assert.ok(first.ok, 'no echo through the daemonised tunnel');
  const r = await udpEcho(topo, { count: 50, rate: 200 });
  assert.ok(r.ratio >= 0.99, `only ${r.received}/${r.sent} echoed`);
  await stopDaemon(cli, 'SIGUSR1');
  await stopDaemon(srv, 'SIGUSR1');
  assert.deepEqual(await leftovers('client'), [], 'processes left in the client namespace');
  assert.deepEqual(await leftovers('server'), [], 'processes left in the server namespace');
}));

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`server daemon stops cleanly on ${sig}`, { timeout: 30_000 }, topo.guard(async () => {
    const srv = await startDaemon('server', sig);
    await stopDaemon(srv, sig);
    assert.deepEqual(await leftovers('server'), [], 'processes left in the server namespace');
  }));
}

test('SIGHUP reopens the log file after it was moved away (logrotate); --log-format=json', { timeout: 30_000 }, topo.guard(async () => {
  const srv = await startDaemon('server', 'hup', ['--log-format=json']);
  const rotated = `${srv.log}.1`;
  fs.renameSync(srv.log, rotated);
  assert.ok(signalPid(srv.pid, 'SIGHUP'), 'could not send SIGHUP');
  assert.ok(await pollUntil(() => fs.existsSync(srv.log), 3000, 50), 'no new log file 3 s after SIGHUP');
  assert.ok(isAlive(srv.pid), 'SIGHUP stopped the daemon');
  assert.ok(signalPid(srv.pid, 'SIGUSR2'), 'could not send SIGUSR2');
  const counted = await pollUntil(() => /counters:/.test(fs.readFileSync(srv.log, 'utf8')), 3000, 50);
  await stopDaemon(srv, 'SIGTERM');
  const fresh = fs.readFileSync(srv.log, 'utf8');
  const old = fs.readFileSync(rotated, 'utf8');
  assert.ok(counted, `the counters line did not reach the new file:\n${fresh}`);
  assert.doesNotMatch(old, /counters:/, 'a line written after SIGHUP went to the rotated file');
  assert.match(old, LOG.ready, 'the rotated file lost the lines written before it was moved');
  for (const text of [old, fresh]) {
    for (const line of text.split('\n').filter((l) => l.startsWith('{'))) {
      const o = JSON.parse(line) as { time: string; level: string; msg: string };
      assert.ok(!Number.isNaN(Date.parse(o.time)) && ['error', 'warn', 'info', 'debug'].includes(o.level) && typeof o.msg === 'string', line);
    }
  }
  assert.ok(fresh.split('\n').some((l) => l.startsWith('{') && JSON.parse(l).msg.startsWith('counters:')), 'no JSON counters line');
}));
