// Outages inside one app flow (issue 9): the flow keeps sending through the tunnel while a test cuts the
// path or restarts the server; its echoes must resume within BOUND_MS of the path or the server being
// back. Measured on the flow's own echoes: the longest gap between two echoes, minus the time away.
import * as assert from 'node:assert/strict';
import { NFT, Topology } from './netns';
import { sleep } from './proc';
import { echoFlowResult, startEchoFlow } from './traffic';

export const BOUND_MS = 3000;
const RATE = 20;
/** The flow's datagrams are 1/RATE apart, so the gap is measured that much coarser. */
const SLACK_MS = 2 * (1000 / RATE);

/** Runs `disturb` (which returns how long the path or the server was away) inside one app flow. */
export async function throughOneFlow(topo: Topology, what: string, awayMs: number, disturb: () => Promise<number>): Promise<void> {
  const flow = startEchoFlow(topo, { count: Math.round(RATE * (awayMs / 1000 + 14)), rate: RATE, min: 64, max: 1200, waitMs: 2000 }, `flow-${what}`);
  await sleep(3000);
  const away = await disturb();
  const r = await echoFlowResult(flow);
  const recovery = r.maxGapMs - away;
  console.log(`outage: ${what}: away ${away} ms, longest echo gap ${r.maxGapMs} ms, so echoes resumed ${recovery} ms after the return; ` +
    `${r.received}/${r.sent} echoed`);
  assert.equal(r.bad, 0);
  assert.ok(r.received > 0.5 * RATE * 5, `too few echoes around the outage: ${r.received}/${r.sent}`);
  assert.ok(recovery <= BOUND_MS + SLACK_MS, `${what}: echoes resumed ${recovery} ms after the return (bound ${BOUND_MS} ms)`);
}

/** Drops everything the router forwards for `ms`; returns how long the path was cut. */
export async function cutPath(topo: Topology, ms: number): Promise<number> {
  const rule = await topo.addRule(NFT.fwd, 'counter drop');
  const t0 = Date.now();
  await sleep(ms);
  const dropped = (await topo.ruleCounter(NFT.fwd, rule)).packets;
  await topo.deleteRule(NFT.fwd, rule);
  assert.ok(dropped > 0, 'the drop rule never fired: the test did not cut the path');
  return Date.now() - t0;
}
