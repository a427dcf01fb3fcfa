//! API shapes of plans.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{Entitlement, PlanLimits, PlanState};

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOffer {
    pub id: String,
    pub name: String,
    pub limits: PlanLimits,
    /// Whether the platform has a Stripe price for it (only those can be subscribed to).
    pub available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanList {
    pub items: Vec<PlanOffer>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub storefronts: u64,
    pub products: u64,
    /// Recipients of this month's paid orders (UTC month).
    pub recipients_this_month: u64,
    pub month: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VendorPlanView {
    pub entitlement: Entitlement,
    /// The subscription as last read from Stripe; `null` before the first checkout.
    pub state: Option<PlanState>,
    pub usage: Usage,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanCheckoutRequest {
    pub plan_id: String,
    /// Where Stripe sends the owner after paying, and after giving up.
    pub success_url: String,
    pub cancel_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanCheckoutStarted {
    pub session_id: String,
    /// Stripe's hosted checkout page: send the owner there.
    pub checkout_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillingWebhookOutcome {
    pub event_id: String,
    pub outcome: String,
    pub duplicate: bool,
}
