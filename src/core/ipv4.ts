// IPv4 addresses as unsigned 32-bit numbers in host order: the form the native injector takes.

export function ipToInt(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) throw new Error(`"${ip}" is not an IPv4 address`);
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) throw new Error(`"${ip}" is not an IPv4 address`);
    v = v * 256 + o;
  }
  return v >>> 0;
}

export function intToIp(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
