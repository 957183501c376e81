import * as fs from 'fs';
import { PROTOCOL_VERSION } from '../core/frame';

let version: string | undefined;

/** The package's version, read once from package.json (three levels above dist/src/cli, in the checkout and in the npm package). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = (JSON.parse(fs.readFileSync(require.resolve('../../../package.json'), 'utf8')) as { version: string }).version;
    } catch {
      version = 'unknown'; // a copy without package.json
    }
  }
  return version;
}

/** What --version prints: the package's version and the wire protocol's (both ends must speak the same). */
export function versionLine(kind: 'client' | 'server'): string {
  return `rsock-${kind} ${packageVersion()} (wire protocol ${PROTOCOL_VERSION})`;
}
