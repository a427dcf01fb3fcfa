//! Orders: what a buyer pays for once for many recipients, its totals and its payment
//! states. No I/O here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::vendors::model::{check_email, check_name, is_country};

/// 1 to 10,000 recipients per order.
pub const MAX_RECIPIENTS: usize = 10_000;
/// A bundle holds at most this many lines (each a variant and a quantity).
pub const MAX_LINES: usize = 20;
pub const MAX_QUANTITY: u32 = 100;
/// Recipients are stored this many per item, and the split writes one chunk of units per
/// transaction: a unit and its code item are two of the transaction's 100 items.
pub const RECIPIENTS_PER_CHUNK: usize = 50;

/// An order's payment state. The split (one fulfillment unit per recipient) follows payment;
/// refunds are counted beside the state, since an order can be refunded in parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created with its PaymentIntent; the buyer has not paid yet.
    AwaitingPayment,
    /// A payment attempt failed; the buyer may try again with the same PaymentIntent.
    PaymentFailed,
    /// The PaymentIntent was canceled: the order is over before it began.
    Canceled,
    /// Paid; the split into fulfillment units is running.
    Paid,
    /// Paid, and every recipient's unit and code exists.
    Split,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::PaymentFailed => "payment_failed",
            Self::Canceled => "canceled",
            Self::Paid => "paid",
            Self::Split => "split",
        }
    }
}

/// The payment events that move an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentEvent {
    Succeeded,
    Failed,
    Canceled,
}

/// What an event does to an order in a given state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    To(OrderStatus),
    /// Recorded, not applied: the event does not fit the state (late, repeated or out of order).
    Ignored(String),
}

/// The state machine: awaiting_payment ⇄ payment_failed → paid → split, or → canceled
/// before payment. Stripe lets a buyer retry a failed payment, so failed is not final.
pub fn transition(from: OrderStatus, event: PaymentEvent) -> Transition {
    use OrderStatus::*;
    match (from, event) {
        (AwaitingPayment | PaymentFailed, PaymentEvent::Succeeded) => Transition::To(Paid),
        (AwaitingPayment, PaymentEvent::Failed) => Transition::To(PaymentFailed),
        (AwaitingPayment | PaymentFailed, PaymentEvent::Canceled) => Transition::To(Canceled),
        (state, event) => {
            Transition::Ignored(format!("{event:?} does not apply to an order that is {}", state.as_str()))
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    #[serde(default)]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl Address {
    pub fn check(&self, pointer: &str, errors: &mut Vec<FieldError>) {
        let required = [("line1", &self.line1), ("city", &self.city), ("postal_code", &self.postal_code)];
        for (name, value) in required {
            if value.trim().is_empty() || value.len() > 200 {
                errors.push(FieldError::new(format!("{pointer}/{name}"), "is required (at most 200 characters)"));
            }
        }
        for (name, value) in [("line2", &self.line2), ("region", &self.region)] {
            if value.as_ref().is_some_and(|v| v.len() > 200) {
                errors.push(FieldError::new(format!("{pointer}/{name}"), "is at most 200 characters"));
            }
        }
        if !is_country(&self.country) {
            errors.push(FieldError::new(format!("{pointer}/country"), "must be an ISO 3166-1 alpha-2 code such as DE"));
        }
    }
}

/// One recipient of an order, as the buyer gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub name: String,
    pub email: String,
    /// `None`: the recipient chooses (and enters) the address when redeeming.
    #[serde(default)]
    pub address: Option<Address>,
    /// One of the vendor's shipping methods; a recipient's address must be in its zone.
    pub shipping_method_id: String,
    #[serde(default)]
    pub gift_message: Option<String>,
}

/// One line of the bundle every recipient receives, priced as the storefront showed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderLine {
    pub product_id: String,
    pub variant_id: String,
    pub title: String,
    pub variant_title: String,
    pub sku: Option<String>,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub weight_grams: i64,
    /// Variants the recipient may swap to (same product, visible, no dearer than this one).
    pub swap_variant_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Totals {
    pub items_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

/// How far the split has come: `units_created` only grows, and counts units that exist in
/// one unbroken run from the first, so a resumed split starts there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SplitProgress {
    pub units_created: u32,
    pub completed_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub storefront_id: String,
    pub buyer_id: String,
    pub buyer_email: Option<String>,
    pub sender_name: String,
    pub status: OrderStatus,
    pub currency: String,
    pub lines: Vec<OrderLine>,
    pub recipient_count: u32,
    pub totals: Totals,
    pub tax_rate_basis_points: u32,
    pub payment_intent_id: String,
    pub split: SplitProgress,
    /// Sum of the refunds Stripe confirmed.
    pub refunded_minor: i64,
    /// Days after the gift email a link stops working, and after which a reminder goes out.
    pub expires_after_days: u32,
    pub remind_after_days: u32,
    pub created_at: String,
    pub updated_at: String,
}

/// A refund of units of an order: asked of Stripe, settled when Stripe confirms it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Asked of Stripe; the units are held (no packing) until Stripe answers.
    Pending,
    /// Stripe refunded it: the units are cancelled and the order's refunded amount counts it.
    Succeeded,
    /// Stripe refused or failed it: the units are released as they were.
    Failed,
}

/// Refunds settle only from `pending`; Stripe's verdict on a settled refund changes nothing.
pub fn refund_settlement(stripe_status: &str) -> Option<RefundStatus> {
    match stripe_status {
        "succeeded" => Some(RefundStatus::Succeeded),
        "failed" | "canceled" => Some(RefundStatus::Failed),
        // pending, requires_action: not yet.
        _ => None,
    }
}

/// At most this many units per refund: one transaction settles them with the refund, the order,
/// the audit entry, the webhook event's record and the ledger entry with its claim (100 items).
pub const MAX_REFUND_UNITS: usize = 94;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Refund {
    pub id: String,
    pub order_id: String,
    pub unit_numbers: Vec<u32>,
    pub amount_minor: i64,
    pub currency: String,
    pub status: RefundStatus,
    pub stripe_refund_id: Option<String>,
    pub reason: Option<String>,
    /// Why Stripe did not refund, when it did not.
    pub failure: Option<String>,
    pub requested_by: String,
    pub created_at: String,
    pub updated_at: String,
}

/// The tax on `amount` at `basis_points` (1/100 of a percent), rounded half up.
pub fn tax_minor(amount: i64, basis_points: u32) -> i64 {
    let tax = (i128::from(amount) * i128::from(basis_points) + 5_000) / 10_000;
    i64::try_from(tax).unwrap_or(i64::MAX)
}

/// The price of one recipient's bundle.
pub fn bundle_minor(lines: &[OrderLine]) -> i64 {
    lines.iter().map(|l| l.unit_price_minor * i64::from(l.quantity)).sum()
}

pub fn bundle_weight_grams(lines: &[OrderLine]) -> i64 {
    lines.iter().map(|l| l.weight_grams * i64::from(l.quantity)).sum()
}

/// Totals of an order from its bundle and each recipient's shipping amount.
/// Sums saturate (in i128, then at `i64::MAX`): an absurd order is refused by its total, never
/// wrapped into a small one.
pub fn totals(lines: &[OrderLine], shipping_per_recipient: &[i64], tax_basis_points: u32) -> Totals {
    let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    let bundle: i128 = lines.iter().map(|l| i128::from(l.unit_price_minor) * i128::from(l.quantity)).sum();
    let items_minor = clamp(bundle * shipping_per_recipient.len() as i128);
    let shipping_minor = clamp(shipping_per_recipient.iter().map(|s| i128::from(*s)).sum());
    let tax = tax_minor(items_minor.saturating_add(shipping_minor), tax_basis_points);
    Totals {
        items_minor,
        shipping_minor,
        tax_minor: tax,
        total_minor: items_minor.saturating_add(shipping_minor).saturating_add(tax),
    }
}

/// What each recipient's unit cost the buyer: the bundle, the recipient's shipping and a share
/// of the order's tax proportional to both, apportioned on running totals so the units add up
/// to the order's total to the minor unit (a refund of every unit refunds the whole order).
pub fn unit_amounts(bundle: i64, shipping: &[i64], tax_total: i64) -> Vec<i64> {
    let pretax_sum: i64 = shipping.iter().map(|s| bundle + s).sum();
    let (mut running, mut taxed) = (0i128, 0i64);
    shipping
        .iter()
        .map(|s| {
            let pretax = bundle + s;
            running += i128::from(pretax);
            let tax_so_far =
                if pretax_sum == 0 { 0 } else { (i128::from(tax_total) * running / i128::from(pretax_sum)) as i64 };
            let share = tax_so_far - taxed;
            taxed = tax_so_far;
            pretax + share
        })
        .collect()
}

/// Stripe's bounds of one payment in minor units: at most 99,999,999 (eight digits), at least
/// 50 (0.50 of EUR/USD/GBP; Stripe refuses smaller charges).
pub const MAX_ORDER_TOTAL: i64 = 99_999_999;
pub const MIN_ORDER_TOTAL: i64 = 50;
/// Variants a recipient may swap to, per line: keeps units (50 per transaction) small.
pub const MAX_SWAP_CHOICES: usize = 24;

pub fn check_recipient(r: &Recipient, pointer: &str, errors: &mut Vec<FieldError>) {
    check_name(&r.name, &format!("{pointer}/name"), errors);
    check_email(&r.email, &format!("{pointer}/email"), errors);
    if let Some(address) = &r.address {
        address.check(&format!("{pointer}/address"), errors);
    }
    if r.gift_message.as_ref().is_some_and(|m| m.chars().count() > 1_000) {
        errors.push(FieldError::new(format!("{pointer}/gift_message"), "is at most 1,000 characters"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_events_move_orders_only_where_they_fit() {
        use OrderStatus::*;
        assert_eq!(transition(AwaitingPayment, PaymentEvent::Succeeded), Transition::To(Paid));
        assert_eq!(transition(AwaitingPayment, PaymentEvent::Failed), Transition::To(PaymentFailed));
        assert_eq!(transition(PaymentFailed, PaymentEvent::Succeeded), Transition::To(Paid));
        assert_eq!(transition(PaymentFailed, PaymentEvent::Canceled), Transition::To(Canceled));
        for late in [Paid, Split, Canceled] {
            assert!(matches!(transition(late, PaymentEvent::Succeeded), Transition::Ignored(_)), "{late:?}");
            assert!(matches!(transition(late, PaymentEvent::Failed), Transition::Ignored(_)), "{late:?}");
        }
        assert!(matches!(transition(Paid, PaymentEvent::Canceled), Transition::Ignored(_)));
        assert!(matches!(transition(PaymentFailed, PaymentEvent::Failed), Transition::Ignored(_)));
    }

    #[test]
    fn unit_amounts_add_up_to_the_total_to_the_minor_unit() {
        let shipping = [495, 0, 990, 495, 1290, 7];
        let bundle = 3_333;
        let t = totals(
            &[OrderLine {
                product_id: "p".into(),
                variant_id: "v".into(),
                title: "t".into(),
                variant_title: "v".into(),
                sku: None,
                quantity: 1,
                unit_price_minor: bundle,
                weight_grams: 1,
                swap_variant_ids: vec![],
            }],
            &shipping,
            1_900,
        );
        let amounts = unit_amounts(bundle, &shipping, t.tax_minor);
        assert_eq!(amounts.iter().sum::<i64>(), t.total_minor);
        for (amount, ship) in amounts.iter().zip(shipping) {
            let exact = (bundle + ship) as f64 * 1.19;
            assert!((*amount as f64 - exact).abs() <= 1.0, "{amount} vs {exact}");
        }
        assert_eq!(unit_amounts(0, &[0, 0], 0), vec![0, 0]);
    }

    #[test]
    fn totals_add_up_in_minor_units_and_tax_rounds_half_up() {
        let line = |price, qty| OrderLine {
            product_id: "p".into(),
            variant_id: "v".into(),
            title: "t".into(),
            variant_title: "v".into(),
            sku: None,
            quantity: qty,
            unit_price_minor: price,
            weight_grams: 100,
            swap_variant_ids: vec![],
        };
        let t = totals(&[line(2250, 1), line(1490, 2)], &[495, 0, 990], 1_900);
        assert_eq!(t.items_minor, 3 * (2250 + 2 * 1490));
        assert_eq!(t.shipping_minor, 1485);
        assert_eq!(t.tax_minor, ((15_690 + 1_485) * 19 + 50) / 100);
        assert_eq!(t.total_minor, t.items_minor + t.shipping_minor + t.tax_minor);
        assert_eq!(tax_minor(5, 1_000), 1, "0.5 rounds up");
        assert_eq!(tax_minor(4, 1_000), 0);
    }
}
