// One worker thread of --workers: a whole RsockClient or RsockServer on its own addon handles
// (capture, injector, socket watcher, UDP mux, all on this thread's event loop). It logs through the
// main thread, which owns the log file, the signals, the pid file and --metrics, and answers its
// requests for status and counters (workers.ts is the other end).
import { parentPort, workerData } from 'worker_threads';
import { nativeIo } from '../io/native-io';
import { RsockClient } from '../tunnel/client';
import { RsockServer } from '../tunnel/server';
import { Logger } from '../util/log';
import type { ToMain, ToWorker, WorkerInit } from './workers';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: ToMain) => port.postMessage(m);
const log = new Logger(init.level);
log.forward = (level, msg) => post({ t: 'log', level, msg });

async function run(): Promise<void> {
  let tunnel: RsockClient | RsockServer;
  let up = true;
  try {
    if (init.client) {
      const client = new RsockClient(init.client, log, nativeIo(init.io));
      await client.start();
      tunnel = client;
      up = await client.waitUp(10000);
    } else {
      const server = new RsockServer(init.server!, log, nativeIo(init.io));
      server.start();
      tunnel = server;
    }
  } catch (e) {
    post({ t: 'error', msg: (e as Error).message });
    return;
  }
  port.on('message', (m: ToWorker) => {
    if (m.t === 'status') post({ t: 'reply', id: m.id, value: tunnel.status() });
    else if (m.t === 'stats') post({ t: 'reply', id: m.id, value: tunnel.stats() });
    else if (m.t === 'stop') {
      tunnel.stop().then(
        () => post({ t: 'stopped', stats: tunnel.stats() }),
        (e: Error) => post({ t: 'error', msg: `while stopping: ${e.message}` }),
      );
    }
  });
  post({ t: 'ready', up });
}

void run();
