//! API shapes of orders and their units.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{Address, Order, OrderLine, OrderStatus, Recipient, SplitProgress, Totals};
use crate::fulfillment::model::{FulfillmentUnit, GiftState, RedemptionCode, UnitLine, UnitStatus};

/// One line of the bundle each recipient gets.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutItem {
    pub product_id: String,
    pub variant_id: String,
    pub quantity: u32,
}

/// A checkout: the same bundle for every recipient, who are listed either as JSON
/// (`recipients`) or as CSV text (`recipients_csv`, header
/// `name,email,shipping_method_id,gift_message,line1,line2,city,postal_code,region,country`;
/// empty address columns let the recipient choose).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub items: Vec<CheckoutItem>,
    /// Shown to recipients as who the gift is from.
    pub sender_name: String,
    #[serde(default)]
    pub buyer_email: Option<String>,
    #[serde(default)]
    pub recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    pub recipients_csv: Option<String>,
    /// Days after the gift email the link stops working (1–365, default 30).
    #[serde(default)]
    pub expires_after_days: Option<u32>,
    /// Days after the gift email a recipient who has not redeemed is reminded (default 7).
    #[serde(default)]
    pub remind_after_days: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResponse {
    pub id: String,
    pub storefront_id: String,
    pub status: OrderStatus,
    pub currency: String,
    pub sender_name: String,
    pub lines: Vec<OrderLine>,
    pub recipient_count: u32,
    pub totals: Totals,
    pub tax_rate_basis_points: u32,
    pub payment_intent_id: String,
    pub split: SplitProgress,
    pub refunded_minor: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Order> for OrderResponse {
    fn from(o: Order) -> Self {
        Self {
            id: o.id,
            storefront_id: o.storefront_id,
            status: o.status,
            currency: o.currency,
            sender_name: o.sender_name,
            lines: o.lines,
            recipient_count: o.recipient_count,
            totals: o.totals,
            tax_rate_basis_points: o.tax_rate_basis_points,
            payment_intent_id: o.payment_intent_id,
            split: o.split,
            refunded_minor: o.refunded_minor,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    pub order: OrderResponse,
    /// For Stripe.js in the buyer's browser to confirm the payment. Shown once, never stored.
    pub client_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    pub items: Vec<OrderResponse>,
    pub next_cursor: Option<String>,
}

/// A unit as staff and the buyer see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitResponse {
    pub id: String,
    pub order_id: String,
    pub number: u32,
    pub status: UnitStatus,
    pub gift: GiftState,
    pub recipient_name: String,
    pub recipient_email: String,
    pub gift_message: Option<String>,
    pub address: Option<Address>,
    pub shipping_method_id: String,
    pub lines: Vec<UnitLine>,
    /// What the buyer paid for this unit: bundle, shipping and its share of the tax.
    pub amount_minor: i64,
    /// A refund of the unit in progress at Stripe.
    pub refund_id: Option<String>,
    /// `XXXX-XXXX-XXXX-XXXX`, as printed on a card.
    pub code: String,
    pub expires_at: String,
    pub thank_you_note: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// The order fulfilling this unit in the vendor's Shopify shop.
    pub external_order: Option<crate::fulfillment::model::ExternalOrder>,
    pub updated_at: String,
}

impl From<FulfillmentUnit> for UnitResponse {
    fn from(u: FulfillmentUnit) -> Self {
        let code = RedemptionCode::parse(&u.code).map(|c| c.display()).unwrap_or(u.code);
        Self {
            id: u.id,
            external_order: u.external_order,
            order_id: u.order_id,
            number: u.number,
            status: u.status,
            gift: u.gift,
            recipient_name: u.recipient_name,
            recipient_email: u.recipient_email,
            gift_message: u.gift_message,
            address: u.address,
            shipping_method_id: u.shipping_method_id,
            lines: u.lines,
            amount_minor: u.amount_minor,
            refund_id: u.refund_id,
            code,
            expires_at: u.expires_at,
            thank_you_note: u.thank_you_note,
            carrier: u.carrier,
            tracking_number: u.tracking_number,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitList {
    pub items: Vec<UnitResponse>,
    pub next_cursor: Option<String>,
}

/// Refund some units (at most 94), or the whole order (every unit not shipped; in refunds of 94
/// units, asked of Stripe by jobs when there are several). The amount is what the
/// buyer paid for those units (bundle, shipping, tax share); units already shipped cannot be
/// refunded here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[serde(default)]
    pub unit_numbers: Option<Vec<u32>>,
    #[serde(default)]
    pub whole_order: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

pub use super::model::Refund as RefundResponse;

/// The refunds a request made: one, or for a whole order of more than 94 units one per 94
/// units (each settled by Stripe on its own).
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundsResponse {
    pub refunds: Vec<RefundResponse>,
}
