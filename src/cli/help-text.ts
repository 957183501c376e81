// What --help prints after the options: signals, the status command, and examples of each program.
import type { Kind } from './options';

export function helpAfter(kind: Kind): string {
  const isClient = kind === 'client';
  return (
    `\nSignals: SIGUSR1, SIGTERM or SIGINT stop it cleanly; SIGHUP reopens the --log file (for logrotate); SIGUSR2 logs the counters.\n` +
    `Status of a running process started with --metrics: rsock-${kind} status --metrics=HOST:PORT [--watch]\n` +
    (isClient
      ? '\nExamples:\n  sudo rsock-client --taddr=203.0.113.7 --ports=10001-10010 --ludp=127.0.0.1:30000 --key=SECRET\n' +
        '  sudo rsock-client --taddr=2001:db8::7 --ports=10001-10010 --ludp=[::1]:30000 --key=SECRET\n' +
        '\nWireGuard and DNS over one tunnel (the server runs --taddr=127.0.0.1:51820 --allow=127.0.0.1:53):\n' +
        '  sudo rsock-client --taddr=203.0.113.7 --ludp=127.0.0.1:30000 --forward=127.0.0.1:5353=127.0.0.1:53 --key=SECRET\n' +
        '  WireGuard peer: Endpoint = 127.0.0.1:30000; DNS: dig -p 5353 @127.0.0.1 example.com\n'
      : '\nExamples:\n  sudo rsock-server --dev=eth0 --taddr=127.0.0.1:9999 --ports=10001-10010 --key=SECRET\n' +
        '  sudo rsock-server --dev=eth0 --taddr=[::1]:9999 --ports=10001-10010 --key=SECRET\n' +
        '\nWireGuard and DNS over one tunnel (clients use --forward=LOCAL:PORT=127.0.0.1:53 for DNS):\n' +
        '  sudo rsock-server --taddr=127.0.0.1:51820 --allow=127.0.0.1:53 --ports=10001-10010 --key=SECRET\n')
  );
}
