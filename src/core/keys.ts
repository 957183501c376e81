// One shared secret becomes two 16-byte SipHash keys, one per direction, so a frame can't be reflected back at its sender.
import type { Mac } from './mac';

/** Everyone can read this in the source; it only keeps strangers' stray packets out. */
export const DEFAULT_KEY = 'rsock-default-key-change-me';

export interface DirectionKeys {
  clientToServer: Buffer;
  serverToClient: Buffer;
}

export function deriveKeys(mac: Mac, secret: string): DirectionKeys {
  const s = Buffer.from(secret, 'utf8');
  const k = (label: string) => mac.deriveKey(s, Buffer.from(label, 'utf8'));
  return { clientToServer: k('rsock v1 client->server'), serverToClient: k('rsock v1 server->client') };
}
