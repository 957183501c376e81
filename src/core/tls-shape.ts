// TEMPORARY placeholder until the tls branch merges.
export function buildClientHello(_o: Buffer, _off: number, _p: { sni: string; random: Buffer; sessionId: Buffer; keyShare: Buffer; grease: number; padTo?: number }): number { throw new Error('tls-shape not merged'); }
export function parseClientHello(_b: Buffer, _o: number, _l: number): { random: Buffer; sessionId: Buffer; keyShare: Buffer; sni: string; recordLen: number; sessionIdOff: number } | null { throw new Error('tls-shape not merged'); }
export function buildServerHello(_o: Buffer, _off: number, _p: { random: Buffer; sessionIdEcho: Buffer; keyShare: Buffer }): number { throw new Error('tls-shape not merged'); }
export function parseServerHello(_b: Buffer, _o: number, _l: number): { random: Buffer; sessionIdEcho: Buffer; keyShare: Buffer; consumed: number; keyShareOff: number } | null { throw new Error('tls-shape not merged'); }
