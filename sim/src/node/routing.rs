//! Routing: the shared network graph, fee and CLTV policy, and route building.

use crate::chain::NETWORK;

use bitcoin::secp256k1::Secp256k1;

use lightning::blinded_path::payment::{
    BlindedPaymentPath, Bolt12RefundContext, PaymentConstraints, PaymentContext, ReceiveTlvs,
};
use lightning::ln::channelmanager::PaymentId;
use lightning::ln::outbound_payment::RecipientOnionFields;
use lightning::ln::outbound_payment::Retry;
use lightning::routing::gossip::{NetworkGraph, NodeId};
use lightning::routing::router::{
    BlindedTail, DefaultRouter, Path, PaymentParameters, Route, RouteHop, RouteParameters, TrampolineHop,
};
use lightning::routing::scoring::{
    ProbabilisticScorer, ProbabilisticScoringDecayParameters, ProbabilisticScoringFeeParameters,
};
use lightning::sign::{KeysManager, NodeSigner};
use lightning::types::features::{Bolt11InvoiceFeatures, ChannelFeatures, Features, NodeFeatures};
use lightning::types::payment::{PaymentHash, PaymentSecret};

use super::parts::SimLogger;
use super::translate;
use super::types::{self, HopPlan, Invoice, NodeError, NodeKey};
use super::{Node, NodeEnv};
use std::sync::{Arc, Mutex};

/// Base fee every node charges for forwarding an HTLC, msat (its `ChannelConfig`).
pub const FORWARD_FEE_BASE_MSAT: u64 = 1_000;
/// Proportional fee every node charges for forwarding, millionths of the amount.
pub const FORWARD_FEE_PPM: u64 = 100;
/// CLTV delta every node requires between an inbound and an outbound HTLC, blocks.
pub const CLTV_EXPIRY_DELTA_BLOCKS: u16 = 72;
/// CLTV delta of the trampoline hop of a receive (the final node's share), blocks.
pub const TRAMPOLINE_FINAL_CLTV_BLOCKS: u32 = 144;
/// Extra CLTV blocks added past the blinded recipient's requirement (`excess_final_cltv_expiry_delta`).
pub const EXCESS_FINAL_CLTV_BLOCKS: u32 = 40;
/// `min_final_cltv_expiry_delta` of plain invoices ([`Node::create_invoice`]), blocks.
pub const INVOICE_FINAL_CLTV_BLOCKS: u32 = 72;

/// The fee a forwarding node charges for forwarding `amount_msat` (see
/// [`FORWARD_FEE_BASE_MSAT`] and [`FORWARD_FEE_PPM`]).
pub fn forward_fee_msat(amount_msat: u64) -> u64 {
    FORWARD_FEE_BASE_MSAT + amount_msat * FORWARD_FEE_PPM / 1_000_000
}

/// `fee_msat` of each of the `hops` unblinded hops of a trampoline path that must deliver
/// `to_trampoline_msat` to the first trampoline node: each non-final hop charges
/// [`forward_fee_msat`] of what it forwards (the rest of the path, computed backwards from
/// the trampoline); the last unblinded hop (the first trampoline node) gets 0, as the
/// trampoline hops carry the amount and their fees.
pub(super) fn unblinded_hop_fees(hops: usize, to_trampoline_msat: u64) -> Vec<u64> {
    let mut fees = vec![0u64; hops];
    let mut carried = to_trampoline_msat;
    for i in (0..hops.saturating_sub(1)).rev() {
        fees[i] = forward_fee_msat(carried);
        carried += fees[i];
    }
    fees
}

/// `cltv_expiry_delta` of unblinded hop `i` of `hops`: [`CLTV_EXPIRY_DELTA_BLOCKS`] for a
/// forwarding hop, the sum of the trampoline hops' deltas (`trampoline_cltv`) for the last.
pub(super) fn unblinded_hop_cltv_delta(i: usize, hops: usize, trampoline_cltv: u32) -> u32 {
    if i + 1 == hops {
        trampoline_cltv
    } else {
        CLTV_EXPIRY_DELTA_BLOCKS as u32
    }
}
/// An invoice-like handle for a payment to a trampoline recipient through a blinded path:
/// what the payee hands the payer. Created by [`Node::create_trampoline_receive`].
#[derive(Clone)]
pub struct TrampolineReceive {
    /// The payee (also the trampoline hop).
    pub payee: NodeKey,
    /// The payment hash.
    pub payment_hash: types::PaymentHash,
    /// Total amount to pay, msat.
    pub amount_msat: u64,
    blinded_path: BlindedPaymentPath,
}

pub(super) type Graph = NetworkGraph<Arc<SimLogger>>;
pub(super) type Scorer = ProbabilisticScorer<Arc<Graph>, Arc<SimLogger>>;
pub(super) type SimRouter = DefaultRouter<
    Arc<Graph>,
    Arc<SimLogger>,
    Arc<KeysManager>,
    Arc<Mutex<Scorer>>,
    ProbabilisticScoringFeeParameters,
    Scorer,
>;

/// The network graph every node routes over: LDK's `NetworkGraph`, filled by the scenario
/// from its topology (the channels are unannounced, so no gossip would tell the nodes about
/// them; this stands in for an application that loads a graph from a gossip snapshot). It
/// lives outside the nodes and survives their restarts.
#[derive(Clone)]
pub struct SharedGraph {
    pub(super) graph: Arc<Graph>,
}

impl SharedGraph {
    /// An empty graph for the simulated network.
    pub fn new() -> SharedGraph {
        SharedGraph { graph: Arc::new(NetworkGraph::new(NETWORK, Arc::new(SimLogger { node: "graph".into() }))) }
    }

    /// Adds the channel `short_channel_id` between `a` and `b` of `capacity_sat`, with both
    /// directions forwarding at this crate's fee ([`forward_fee_msat`]) and CLTV delta
    /// ([`CLTV_EXPIRY_DELTA_BLOCKS`]), HTLCs from 1 msat up to the capacity. `timestamp` is
    /// the channel update's timestamp (unix seconds). Errors with
    /// [`NodeError::GraphRefused`] (LDK's `LightningError` text) if the graph refuses it.
    pub fn add_channel(
        &self,
        short_channel_id: u64,
        a: NodeKey,
        b: NodeKey,
        capacity_sat: u64,
        timestamp: u32,
    ) -> Result<(), NodeError> {
        let (id_a, id_b) = (NodeId::from_pubkey(&a.pk()), NodeId::from_pubkey(&b.pk()));
        self.graph
            .add_channel_from_partial_announcement(
                short_channel_id,
                Some(capacity_sat),
                timestamp as u64,
                ChannelFeatures::empty(),
                id_a.min(id_b),
                id_a.max(id_b),
            )
            .map_err(translate::graph_refused)?;
        for direction in 0..2u8 {
            let update = lightning::ln::msgs::UnsignedChannelUpdate {
                chain_hash: bitcoin::constants::ChainHash::using_genesis_block(NETWORK),
                short_channel_id,
                timestamp,
                message_flags: 1,
                channel_flags: direction,
                cltv_expiry_delta: CLTV_EXPIRY_DELTA_BLOCKS,
                htlc_minimum_msat: 1,
                htlc_maximum_msat: capacity_sat * 1000,
                fee_base_msat: FORWARD_FEE_BASE_MSAT as u32,
                fee_proportional_millionths: FORWARD_FEE_PPM as u32,
                excess_data: Vec::new(),
            };
            self.graph.update_channel_unsigned(&update).map_err(translate::graph_refused)?;
        }
        Ok(())
    }

    /// Number of channels the graph knows.
    pub fn channel_count(&self) -> usize {
        self.graph.read_only().channels().len()
    }
}

impl Default for SharedGraph {
    fn default() -> Self {
        SharedGraph::new()
    }
}

impl Node {
    /// LDK's `DefaultRouter` over the shared graph, with a fresh `ProbabilisticScorer` per
    /// incarnation (the scorer is application state this harness does not persist).
    pub(super) fn router(env: &NodeEnv, logger: &Arc<SimLogger>, keys: &Arc<KeysManager>) -> Arc<SimRouter> {
        let graph = env.graph.graph.clone();
        let scorer =
            ProbabilisticScorer::new(ProbabilisticScoringDecayParameters::default(), graph.clone(), logger.clone());
        Arc::new(DefaultRouter::new(
            graph,
            logger.clone(),
            keys.clone(),
            Arc::new(Mutex::new(scorer)),
            ProbabilisticScoringFeeParameters::default(),
        ))
    }

    /// As a payee: registers an inbound payment of `amount_msat` with LDK
    /// (`create_inbound_payment`, so LDK can derive the preimage when it arrives) and builds
    /// a one-hop blinded path to this node, the trampoline hop of the payment.
    pub fn create_trampoline_receive(&mut self, amount_msat: u64) -> TrampolineReceive {
        let (payment_hash, payment_secret, _) =
            self.manager.create_inbound_payment(Some(amount_msat), 7 * 24 * 3600, None, None).expect("inbound payment");
        let tlvs = ReceiveTlvs {
            payment_secret,
            payment_constraints: PaymentConstraints { max_cltv_expiry: u32::MAX, htlc_minimum_msat: 1 },
            payment_context: PaymentContext::Bolt12Refund(Bolt12RefundContext { payment_metadata: None }),
        };
        let secp = Secp256k1::new();
        let me = self.manager.get_our_node_id();
        let path =
            BlindedPaymentPath::new(&[], me, self.keys.get_receive_auth_key(), tlvs, u64::MAX, 0, &*self.keys, &secp)
                .expect("blinded path");
        TrampolineReceive {
            payee: NodeKey::from_pk(&me),
            payment_hash: types::PaymentHash(payment_hash.0),
            amount_msat,
            blinded_path: path,
        }
    }

    /// As a payer: pays `receive` over `parts`, one path per MPP part. Each part is
    /// `(hops, amount_msat)`, where `hops` lists the nodes from the first forwarder to the
    /// first trampoline hop, each with the channel the HTLC arrives on. The trampoline hops
    /// are `via_trampoline` (if given: an intermediate trampoline node that is to forward
    /// to the payee, the last entry of `hops`) and then the payee, whose blinded path ends
    /// the route. Forwarding fees follow [`forward_fee_msat`] (the intermediate trampoline
    /// hop charges it too); CLTV deltas [`CLTV_EXPIRY_DELTA_BLOCKS`] per forwarding hop and
    /// [`TRAMPOLINE_FINAL_CLTV_BLOCKS`] for the payee.
    ///
    /// Errors with [`NodeError::SendRefused`] (LDK's `RetryableSendFailure`) if LDK refuses to send.
    pub fn send_trampoline_payment(
        &mut self,
        receive: &TrampolineReceive,
        parts: &[(Vec<HopPlan>, u64)],
        payment_id: types::PaymentId,
        via_trampoline: Option<NodeKey>,
    ) -> Result<(), NodeError> {
        let payee = receive.payee.pk();
        let mut paths = Vec::new();
        for (hops, amount_msat) in parts {
            let mut trampoline_hops = Vec::new();
            if let Some(t) = via_trampoline {
                trampoline_hops.push(TrampolineHop {
                    pubkey: t.pk(),
                    node_features: Features::empty(),
                    fee_msat: forward_fee_msat(*amount_msat),
                    cltv_expiry_delta: CLTV_EXPIRY_DELTA_BLOCKS as u32,
                });
            }
            trampoline_hops.push(TrampolineHop {
                pubkey: payee,
                node_features: Features::empty(),
                fee_msat: *amount_msat,
                cltv_expiry_delta: TRAMPOLINE_FINAL_CLTV_BLOCKS,
            });
            let trampoline_cltv: u32 = trampoline_hops.iter().map(|h| h.cltv_expiry_delta).sum();
            let trampoline_fee: u64 = trampoline_hops.iter().rev().skip(1).map(|h| h.fee_msat).sum();
            // fee_msat of a non-final hop is what that hop charges to forward the rest of the
            // path, computed from the payee backwards; the last unblinded hop (the first
            // trampoline node) gets 0 here: the trampoline hops carry the amount and fees.
            let fees = unblinded_hop_fees(hops.len(), *amount_msat + trampoline_fee);
            let route_hops: Vec<RouteHop> = hops
                .iter()
                .enumerate()
                .map(|(i, hop)| RouteHop {
                    pubkey: hop.node.pk(),
                    node_features: NodeFeatures::empty(),
                    short_channel_id: hop.short_channel_id,
                    channel_features: ChannelFeatures::empty(),
                    fee_msat: fees[i],
                    cltv_expiry_delta: unblinded_hop_cltv_delta(i, hops.len(), trampoline_cltv),
                    maybe_announced_channel: false,
                })
                .collect();
            let path = &receive.blinded_path;
            paths.push(Path {
                hops: route_hops,
                blinded_tail: Some(BlindedTail {
                    trampoline_hops,
                    hops: path.blinded_hops().to_vec(),
                    blinding_point: path.blinding_point(),
                    excess_final_cltv_expiry_delta: EXCESS_FINAL_CLTV_BLOCKS,
                    final_value_msat: *amount_msat,
                }),
            });
        }
        let route = Route { paths, route_params: None };
        self.manager
            .send_payment_with_route(
                route,
                PaymentHash(receive.payment_hash.0),
                RecipientOnionFields::spontaneous_empty(receive.amount_msat),
                PaymentId(payment_id.0),
            )
            .map_err(translate::send_failure)
    }

    /// As a payee: registers an inbound payment of `amount_msat` with LDK
    /// (`create_inbound_payment`, LDK derives the preimage when it arrives) and returns what
    /// a BOLT 11 invoice would carry, for a plain (non-trampoline, non-blinded) payment.
    pub fn create_invoice(&mut self, amount_msat: u64) -> Invoice {
        let (payment_hash, payment_secret, _) =
            self.manager.create_inbound_payment(Some(amount_msat), 7 * 24 * 3600, None, None).expect("inbound payment");
        Invoice {
            payee: NodeKey::from_pk(&self.manager.get_our_node_id()),
            payment_hash: types::PaymentHash(payment_hash.0),
            payment_secret: types::PaymentSecret(payment_secret.0),
            amount_msat,
        }
    }

    /// As a payer: pays `invoice` with LDK's `send_payment`, so the route (and any MPP
    /// split) comes from the node's `DefaultRouter` over the shared graph. At most
    /// `max_channel_saturation_power_of_half` of a channel's capacity is used per path (LDK's
    /// `PaymentParameters` field: 0 = all, 1 = half, 2 = a quarter, ...), which makes the
    /// router split larger payments into MPP parts. LDK retries failed paths up to
    /// `retries` times.
    ///
    /// Errors with [`NodeError::SendRefused`] (LDK's `RetryableSendFailure`) if LDK refuses to send, e.g.
    /// because the router found no route.
    pub fn send_payment(
        &mut self,
        invoice: &Invoice,
        payment_id: types::PaymentId,
        max_channel_saturation_power_of_half: u8,
        retries: u32,
    ) -> Result<(), NodeError> {
        let mut features = Bolt11InvoiceFeatures::empty();
        features.set_variable_length_onion_required();
        features.set_payment_secret_required();
        features.set_basic_mpp_optional();
        let mut params = PaymentParameters::from_node_id(invoice.payee.pk(), INVOICE_FINAL_CLTV_BLOCKS)
            .with_bolt11_features(features)
            .expect("bolt11 features on a node-id payee");
        params.max_channel_saturation_power_of_half = max_channel_saturation_power_of_half;
        let route_params = RouteParameters::from_payment_params_and_value(params, invoice.amount_msat);
        self.manager
            .send_payment(
                PaymentHash(invoice.payment_hash.0),
                RecipientOnionFields::secret_only(PaymentSecret(invoice.payment_secret.0), invoice.amount_msat),
                PaymentId(payment_id.0),
                route_params,
                Retry::Attempts(retries),
            )
            .map_err(translate::send_failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_fee_is_base_plus_proportional_rounded_down() {
        assert_eq!(forward_fee_msat(0), 1_000);
        assert_eq!(forward_fee_msat(1_000_000), 1_100);
        assert_eq!(forward_fee_msat(9_999), 1_000, "0.9999 msat of proportional fee rounds down");
        assert_eq!(forward_fee_msat(100_000_000), 11_000);
    }

    #[test]
    fn unblinded_fees_are_computed_backwards_from_the_trampoline() {
        assert_eq!(unblinded_hop_fees(0, 5_000), Vec::<u64>::new());
        assert_eq!(unblinded_hop_fees(1, 1_000_000), vec![0], "the first trampoline node is paid by its hops");
        // Two hops: the forwarder charges for the 1_000_000 it forwards.
        assert_eq!(unblinded_hop_fees(2, 1_000_000), vec![1_100, 0]);
        // Three hops: the first forwarder also carries the second one's fee.
        let fees = unblinded_hop_fees(3, 1_000_000);
        assert_eq!(fees, vec![forward_fee_msat(1_001_100), 1_100, 0]);
        assert_eq!(fees[0], 1_100, "1_001_100 * 100 ppm rounds down to 100");
    }

    #[test]
    fn cltv_deltas_forwarders_then_the_trampoline_share() {
        let trampoline = CLTV_EXPIRY_DELTA_BLOCKS as u32 + TRAMPOLINE_FINAL_CLTV_BLOCKS;
        let deltas: Vec<u32> = (0..3).map(|i| unblinded_hop_cltv_delta(i, 3, trampoline)).collect();
        assert_eq!(deltas, vec![72, 72, 216]);
        assert_eq!(unblinded_hop_cltv_delta(0, 1, TRAMPOLINE_FINAL_CLTV_BLOCKS), 144);
    }
}
