// Random loss on the test router, both ways: one TCP packet in `oneIn` arriving from either side is
// dropped at the head of the prerouting chain (priority -300, before conntrack), as if lost on the
// wire. nftables' numgen rather than tc netem, which some kernels (this CI's) lack.
import { NFT, Topology } from './netns';

export async function addRouterLoss(topo: Topology, oneIn: number): Promise<void> {
  await topo.nft('router', [
    `add counter ${NFT.family} ${NFT.table} rsk_loss_c2s`,
    `add counter ${NFT.family} ${NFT.table} rsk_loss_s2c`,
    `insert rule ${NFT.family} ${NFT.table} ${NFT.pre} iifname "${topo.dev.routerClient}" meta l4proto tcp numgen random mod ${oneIn} == 0 counter name rsk_loss_c2s drop`,
    `insert rule ${NFT.family} ${NFT.table} ${NFT.pre} iifname "${topo.dev.routerServer}" meta l4proto tcp numgen random mod ${oneIn} == 0 counter name rsk_loss_s2c drop`,
  ].join('\n') + '\n');
}

/** Packets the loss rules dropped so far, by the side they came from. */
export async function routerLossDrops(topo: Topology): Promise<{ fromClient: number; fromServer: number }> {
  const c = await topo.listCounters('router', NFT.table, NFT.family);
  return { fromClient: c.rsk_loss_c2s?.packets ?? NaN, fromServer: c.rsk_loss_s2c?.packets ?? NaN };
}
