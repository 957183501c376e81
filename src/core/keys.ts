// Keys (docs/PROTOCOL.md §3). One shared secret gives the handshake keys, bound to the wire mode so that
// ends with different --obfs or --crypt fail the handshake as clearly as ends with different --key.
// Each connection then gets its own keys from both ends' fresh nonces: a frame recorded on one
// connection means nothing on another, and a replayed handshake leads nowhere.
import type { Crypto } from './crypto';
import type { WireMode } from './frame';

/** Everyone can read this in the source; it only keeps strangers' stray packets out. */
export const DEFAULT_KEY = 'rsock-default-key-change-me';

export interface HandshakeKeys {
  /** BLAKE2b-256 of the secret: the root of every other key. */
  master: Buffer;
  /** Authenticates the client's first message, and the server's answer. */
  clientHello: Buffer;
  serverHello: Buffer;
}

const label = (s: string) => Buffer.from(`rsock v2 ${s}`, 'utf8');

export function handshakeKeys(crypto: Crypto, secret: string, mode: WireMode): HandshakeKeys {
  const master = crypto.hash(null, Buffer.from(secret, 'utf8'), 32);
  const bound = `obfs=${mode.obfs} crypt=${mode.aead ? 'aead' : 'none'}`;
  return {
    master,
    clientHello: crypto.hash(master, label(`client hello ${bound}`), 32),
    serverHello: crypto.hash(master, label(`server hello ${bound}`), 32),
  };
}

/** One direction's keys: the header mask's, the SipHash tag's, the AEAD's (see src/core/crypto.ts). */
export interface DirectionKeys {
  mask: Buffer;
  mac: Buffer;
  aead: Buffer;
  /** Masks the datagram counter of a UDP path (src/core/udp-wire.ts); unused on fake TCP. */
  counter: Buffer;
}

export interface ConnectionKeys {
  clientToServer: DirectionKeys;
  serverToClient: DirectionKeys;
}

export function connectionKeys(crypto: Crypto, master: Buffer, clientNonce: Buffer, serverNonce: Buffer): ConnectionKeys {
  const root = crypto.hash(master, Buffer.concat([label('connection'), clientNonce, serverNonce]), 32);
  const dir = (d: string): DirectionKeys => {
    const stream = crypto.hash(root, label(`${d} stream`), 64);
    return {
      mask: stream.subarray(0, 32),
      aead: stream.subarray(32, 64),
      mac: crypto.hash(root, label(`${d} mac`), 16),
      counter: crypto.hash(root, label(`${d} udp counter`), 32),
    };
  };
  return { clientToServer: dir('client->server'), serverToClient: dir('server->client') };
}
