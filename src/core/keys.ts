// One shared secret becomes two 16-byte SipHash keys, one per direction, so a frame can't be reflected back at its sender.
import { createHmac } from 'crypto';

/** Everyone can read this in the source; it only keeps strangers' stray packets out. */
export const DEFAULT_KEY = 'rsock-default-key-change-me';

export interface DirectionKeys {
  clientToServer: Buffer;
  serverToClient: Buffer;
}

export function deriveKeys(secret: string): DirectionKeys {
  const k = (label: string) => createHmac('sha256', secret).update(label).digest().subarray(0, 16);
  return { clientToServer: k('rsock v1 client->server'), serverToClient: k('rsock v1 server->client') };
}
