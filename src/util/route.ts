// Finds the device and source address the kernel would use to reach a peer, as `ip route get` reports
// it. This works with no default route, as long as some route covers the peer.
import { execFileSync } from 'child_process';
import { readFileSync } from 'fs';

export interface RouteInfo {
  dev: string;
  src: string;
}

export function routeTo(ip: string): RouteInfo {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', 'route', 'get', ip], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; code?: string };
    if (err.code === 'ENOENT') throw new Error('cannot find the device: the "ip" command (iproute2) is missing; give --dev');
    throw new Error(`no route to ${ip}: ${(err.stderr ?? '').trim() || 'ip route get failed'}; give --dev`);
  }
  const r = JSON.parse(out)[0] as { dev?: string; prefsrc?: string };
  if (!r?.dev) throw new Error(`no route to ${ip}; give --dev`);
  return { dev: r.dev, src: r.prefsrc ?? '' };
}

/** The device of the default route, or null when there is none. */
export function defaultDevice(): string | null {
  try {
    const out = execFileSync('ip', ['-j', 'route', 'show', 'default'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const r = JSON.parse(out) as { dev?: string }[];
    return r[0]?.dev ?? null;
  } catch {
    return null;
  }
}

/**
 * Bytes to capture per packet: the device's MTU plus link headers, at least 2048. Keeping it close to
 * the MTU matters because every packet is read into a snaplen-sized room of the 1 MiB batch buffer:
 * 65535 would let one recvmmsg take only 16 packets. "any" and unknown devices get 9216 (jumbo frames).
 */
export function captureSnaplen(dev: string): number {
  try {
    const mtu = Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8').trim());
    if (Number.isFinite(mtu) && mtu > 0) return Math.min(65535, Math.max(2048, mtu + 64));
  } catch {
    // fall through
  }
  return 9216;
}
