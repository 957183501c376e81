// The command prefix that runs a child without privileges, for tests that check what happens without
// CAP_NET_RAW/CAP_NET_ADMIN.
//
// The child runs as the owner of the checkout (uid/gid of the repository directory), with its
// supplementary groups, inheritable, ambient and bounding capability sets cleared and no_new_privs
// set (setpriv, util-linux). Running as the owner, not as `nobody`, lets it read its own files when
// the checkout is inside a 0700 home directory (Debian 12 default). When the checkout is owned by
// root (CI), the child is uid 0 with an empty bounding set: it has no capability at all, so it still
// lacks CAP_NET_RAW and CAP_NET_ADMIN (and CAP_DAC_OVERRIDE: it reads root's files as their owner).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** Repository root (this file runs from dist/test/lib). */
const REPO = path.resolve(__dirname, '..', '..', '..');

export interface Owner { uid: number; gid: number }

/** uid/gid that own `dir` (default: the repository root). */
export function checkoutOwner(dir = REPO): Owner {
  const st = fs.statSync(dir);
  return { uid: st.uid, gid: st.gid };
}

/** undefined if setpriv can drop privileges here, else why not (for t.skip()). */
export function unprivilegedUnavailable(): string | undefined {
  const r = spawnSync('setpriv', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return 'setpriv (util-linux) is not installed';
  if (process.getuid && process.getuid() !== 0) return 'needs root to change uid and clear the capability bounding set';
  return undefined;
}

/**
 * The prefix that runs a command without privileges, e.g. for spawnSync(prefix[0], [...prefix.slice(1), cmd, ...args]):
 *   setpriv --reuid=U --regid=G --clear-groups --inh-caps=-all --ambient-caps=-all --bounding-set=-all --no-new-privs --
 */
export function unprivilegedWrapper(owner: Owner = checkoutOwner()): string[] {
  return ['setpriv', `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all',
    '--bounding-set=-all', '--no-new-privs', '--'];
}

/** The two capabilities rsock needs, as setpriv names them and as bits of /proc/PID/status's CapEff. */
export const NET_CAPS = ['net_raw', 'net_admin'] as const;
export const NET_CAPS_MASK = (1n << 13n) | (1n << 12n);

/**
 * A user that can run the checkout without being root: its owner when that is not root, else `nobody`
 * when nobody can read the checkout; else root itself (uid 0, but with no capability beyond `caps`).
 */
export function serviceUser(dir = REPO): Owner & { name: string } {
  const owner = checkoutOwner(dir);
  if (owner.uid !== 0) return { ...owner, name: `uid ${owner.uid} (the checkout's owner)` };
  const files = ['bin/run.js', 'dist/src/cli/main.js', 'node_modules/commander/package.json', 'build/Release/rsock_native.node'];
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'sh', '-c',
    files.map((f) => `test -r '${path.join(dir, f)}'`).join(' && ')], { timeout: 5000 });
  if (r.status === 0) return { uid: 65534, gid: 65534, name: 'nobody (65534)' };
  return { uid: 0, gid: 0, name: 'uid 0 without capabilities (nobody cannot read the checkout)' };
}

/**
 * The prefix that runs a command as `user` holding only `caps` as ambient capabilities, and no way to
 * gain more (no_new_privs, bounding set), as the systemd units do.
 */
export function capsWrapper(user: Owner, caps: readonly string[] = NET_CAPS): string[] {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', `--inh-caps=${set}`, `--ambient-caps=${set}`,
    `--bounding-set=${set}`, '--no-new-privs', '--'];
}
