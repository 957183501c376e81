// The programs' flags as the unit tests give them: parsed and resolved exactly as main() does, with
// commander's own exits and output turned off, so a bad flag is a ConfigError (or commander's error).
import { buildCommand, ClientOptions, Kind, resolveOptions, ServerOptions } from '../../src/cli/options';

export function parseFlags(kind: Kind, args: string[]): ClientOptions | ServerOptions {
  const cmd = buildCommand(kind);
  cmd.exitOverride();
  cmd.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  cmd.parse(['node', `rsock-${kind}`, ...args]);
  return resolveOptions(cmd, kind);
}
