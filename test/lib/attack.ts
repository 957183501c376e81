// The attacker's side of the security tests, from the router namespace: forged segments through
// raw-send.js, and a bypass of the router's own conntrack/NAT for them (a forged segment must leave
// with exactly the addresses and ports it was built with).
import * as fs from 'fs';
import * as path from 'path';
import { Topology } from './netns';

export interface RawSendSpec {
  mode: 'rst' | 'fuzz'; count: number; rate: number; maxMs: number;
  spoof: Array<{ src: string; sport: number; dst: string; dport: number; seq?: number; ack?: number }>;
  own?: { src: string; sportMin: number; sportMax: number; dst: string; dports: number[] };
  window?: number;
}
export interface RawSendResult { sent: number; injected: number; errors: number; lastError: string; ms: number; kinds: Record<string, number> }

/**
 * Segments the router itself sends (raw-send, probes) skip conntrack: otherwise a forged segment on a
 * forwarded connection's tuple would be tracked as a new connection and masquerade could rewrite its
 * source port. Forwarded traffic is untouched (the rule is on the output hook only).
 */
export async function routerNotrack(topo: Topology): Promise<void> {
  await topo.nft('router', `table inet rsknotrack {
  chain out {
    type filter hook output priority raw; policy accept;
    meta l4proto tcp notrack
  }
}
`);
}

/** Runs raw-send in the router namespace with `spec` and returns its result line. */
export async function rawSend(topo: Topology, name: string, spec: RawSendSpec): Promise<RawSendResult> {
  const file = path.join(topo.logDir, `${name}.spec.json`);
  fs.writeFileSync(file, JSON.stringify(spec));
  const r = await topo.execHelper('router', 'raw-send.js', ['--spec', file], { timeoutMs: spec.maxMs + 15_000 });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`raw-send ${name}: no result\n${r.stderr}`);
  return JSON.parse(line) as RawSendResult;
}

export interface PokeResult {
  connected: boolean; connectMs: number; sent: number; received: number; head: string;
  ended: 'fin' | 'reset' | 'open' | 'refused' | 'error'; endMs: number; error: string;
}

/** A kernel TCP connection from `role` to `connect` that sends `payloads` (gapMs apart) and waits up to holdMs. */
export async function tcpPoke(topo: Topology, role: 'client' | 'router' | 'server', connect: string, payloads: Buffer[],
  o: { gapMs?: number; holdMs?: number } = {}): Promise<PokeResult> {
  const gap = o.gapMs ?? 200;
  const hold = o.holdMs ?? 3000;
  const r = await topo.execHelper(role, 'tcp-poke.js', ['--connect', connect, '--hex', payloads.map((p) => p.toString('hex')).join(','),
    '--gap', String(gap), '--hold', String(hold)], { timeoutMs: 5000 + payloads.length * gap + hold + 10_000 });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`tcp-poke: no result\n${r.stderr}`);
  return JSON.parse(line) as PokeResult;
}

export interface CurlResult { exit: number | null; status: number; body: string; ms: number; stderr: string }

/**
 * curl from a namespace, bounded by --max-time. Exit 52 is "empty reply" (the server closed with a
 * FIN before answering), 56 a reset, 28 a timeout (a black hole).
 */
export async function curlGet(topo: Topology, role: 'client' | 'router' | 'server', url: string, maxSeconds = 10): Promise<CurlResult> {
  const t0 = Date.now();
  const r = await topo.exec(role, ['curl', '-sS', '--max-time', String(maxSeconds), '-w', '\n%{http_code}', url],
    { allowFail: true, timeoutMs: maxSeconds * 1000 + 5000 });
  const i = r.stdout.lastIndexOf('\n');
  return { exit: r.code, status: Number(r.stdout.slice(i + 1)) || 0, body: r.stdout.slice(0, Math.max(0, i)), ms: Date.now() - t0, stderr: r.stderr.trim() };
}
