// The engine's counters as the SIGUSR2 line and --metrics show them: the rx path's verdicts, the
// datagram layer's, and the I/O handles' own (kept after the handles close, for the line at shutdown).
import type { CaptureStats, InjectorStats, UdpMuxStats } from '../io/native';
import type { RxStats } from './rx';

export interface EngineParts {
  capture?: CaptureStats;
  injector?: InjectorStats;
  mux?: UdpMuxStats;
  rx?: RxStats;
  datagrams: Record<string, number>;
  connections: number;
}

export function engineCounters(p: EngineParts): Record<string, number> {
  const { capture: c, injector: i, mux: m, rx: r } = p;
  return {
    rxPackets: r?.packets ?? 0,
    rxFrames: r?.frames ?? 0,
    rxForged: r?.forged ?? 0,
    rxReplayed: r?.replayed ?? 0,
    ...p.datagrams,
    rxMalformed: r?.malformed ?? 0,
    rxTruncated: r?.truncated ?? 0,
    rxUnknown: r?.unknown ?? 0,
    captureDropped: c?.dropped ?? 0,
    txSegments: i?.sent ?? 0,
    txErrors: i?.errors ?? 0,
    udpSendErrors: m?.sendErrors ?? 0,
    udpCoalesced: m?.coalesced ?? 0, // sent in UDP GSO groups: stays 0 where the kernel or route refuses them
    connections: p.connections,
  };
}
