// What both programs' --metrics status shares: the process's own fields, the drops by cause from the
// counters they keep, and the cause of a client connection's way down.
import { packageVersion } from '../cli/version';
import { PROTOCOL_VERSION } from '../core/frame';
import type { DropCause, Status } from '../ops/status';

/** Who is reporting, and since when. */
export function processFields(program: Status['program'], startedAt: number): Pick<Status, 'program' | 'version' | 'protocol' | 'pid' | 'startTime' | 'uptimeSec'> {
  return {
    program,
    version: packageVersion(),
    protocol: PROTOCOL_VERSION,
    pid: process.pid,
    startTime: Math.floor(startedAt / 1000),
    uptimeSec: Math.floor((Date.now() - startedAt) / 1000),
  };
}

/** The drops by cause, from the engine's, the UDP transport's and the program's own counters. */
export function dropCounts(engine: Record<string, number>, udp: Record<string, number>, own: Record<string, number>): Record<DropCause, number> {
  const n = (r: Record<string, number>, k: string) => r[k] ?? 0;
  return {
    forged: n(engine, 'rxForged') + n(udp, 'udpPathForged'),
    replayed: n(engine, 'rxReplayed') + n(udp, 'udpPathReplayed'),
    malformed: n(engine, 'rxMalformed') + n(engine, 'rxTruncated') + n(udp, 'udpPathMalformed'),
    too_big: n(own, 'droppedTooBig'),
    no_flow: n(own, 'droppedNoFlow'),
    no_connection: n(own, 'droppedNoConn'),
    refused: n(own, 'droppedRefused'),
  };
}
