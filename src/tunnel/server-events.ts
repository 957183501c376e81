// The server's log of what happens to sessions, connections and flows (ServerSessions' events), and
// the counters they move.
import { endpointText } from '../core/addr';
import { flowName, hex, SessionCarrier, SessionEvent } from '../core/server-sessions';
import { isUdpLink } from '../core/udp-link';
import { Logger } from '../util/log';

export interface FlowCounters { flowsOpened: number; flowsRefused: number; flowsExpired: number }

export function logSessionEvent(ev: SessionEvent, log: Logger, counters: FlowCounters, durationMs: number, flowPort: (sock: number) => number): void {
  switch (ev.type) {
    case 'joined':
      log.info(`client ${hex(ev.session.id)} joined from ${ipPort(ev.link)}`);
      return;
    case 'linkUp':
      log.info(`client ${hex(ev.session.id)}: connection from ${ipPort(ev.link)} on ${isUdpLink(ev.link) ? 'udp' : 'tcp'} port ${ev.link.path.local.port} up; ${ev.session.links.length} live`);
      return;
    case 'linkDown':
      log.info(`client ${hex(ev.session.id)}: connection from ${ipPort(ev.link)} closed: ${ev.reason}; ${ev.session.links.length} live`);
      return;
    case 'left':
      log.info(`client ${hex(ev.session.id)} left: ${ev.reason}`);
      return;
    case 'flowOpened':
      counters.flowsOpened++;
      if (log.enabled('debug')) log.debug(`client ${hex(ev.flow.session.id)}: flow ${ev.flow.id} opened (udp port ${flowPort(ev.flow.sock)})`);
      return;
    case 'flowRefused':
      counters.flowsRefused++;
      log.warn(`client ${hex(ev.flow.session.id)}: flow ${ev.flow.id} refused: it is for ${ev.why}; nothing of it is delivered`);
      return;
    case 'flowExpired':
      if (ev.flow.sock < 0) return;
      counters.flowsExpired++;
      log.info(`flow ${flowName(ev.flow)} expired after ${Math.round(durationMs / 1000)} s idle`);
      return;
    case 'flowFailed':
      log.rateLimited('warn', 'flowfail', 5000, `client ${hex(ev.session.id)}: cannot open flow ${ev.flowId} to the target: ${ev.error}`);
      return;
    case 'badVersion':
      log.rateLimited('warn', 'version', 10000, `a client spoke protocol version ${ev.version < 0 ? '?' : ev.version}; this server speaks 2`);
      return;
  }
}

export function ipPort(link: SessionCarrier): string {
  return endpointText(link.path.remote);
}
