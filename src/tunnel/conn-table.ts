// Finds the connection a captured segment belongs to, by (remote ip, remote port, local port),
// without building a string key per packet.

export class ConnTable<L> {
  private readonly byIp = new Map<number, Map<number, L>>();
  private n = 0;

  get size(): number {
    return this.n;
  }

  get(remoteIp: number, remotePort: number, localPort: number): L | undefined {
    return this.byIp.get(remoteIp)?.get(remotePort * 65536 + localPort);
  }

  set(remoteIp: number, remotePort: number, localPort: number, link: L): void {
    let m = this.byIp.get(remoteIp);
    if (!m) this.byIp.set(remoteIp, (m = new Map()));
    const k = remotePort * 65536 + localPort;
    if (!m.has(k)) this.n++;
    m.set(k, link);
  }

  delete(remoteIp: number, remotePort: number, localPort: number): void {
    const m = this.byIp.get(remoteIp);
    if (m?.delete(remotePort * 65536 + localPort)) {
      this.n--;
      if (m.size === 0) this.byIp.delete(remoteIp);
    }
  }

  *values(): IterableIterator<L> {
    for (const m of this.byIp.values()) yield* m.values();
  }
}
