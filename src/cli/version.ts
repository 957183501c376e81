import * as fs from 'fs';
import { PROTOCOL_VERSION } from '../core/frame';

/** What --version prints: the package's version and the wire protocol's (both ends must speak the same). */
export function versionLine(kind: 'client' | 'server'): string {
  // Read at run time: package.json sits two levels above dist/src/cli in the checkout and in the npm package.
  let version = 'unknown';
  try {
    version = (JSON.parse(fs.readFileSync(require.resolve('../../../package.json'), 'utf8')) as { version: string }).version;
  } catch { /* a copy without package.json */ }
  return `rsock-${kind} ${version} (wire protocol ${PROTOCOL_VERSION})`;
}
