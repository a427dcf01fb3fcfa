//! Vendor plans on the platform's own Stripe account: what each plan allows, the state a
//! vendor's subscription is in, and what that state entitles it to. Pure: no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a plan allows, counted where the resources are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanLimits {
    pub storefronts: u32,
    pub products: u32,
    /// Recipients of paid orders per calendar month (UTC).
    pub recipients_per_month: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Plan {
    pub id: &'static str,
    pub name: &'static str,
    pub limits: PlanLimits,
}

pub const PLANS: &[Plan] = &[
    Plan {
        id: "starter",
        name: "Starter",
        limits: PlanLimits { storefronts: 1, products: 100, recipients_per_month: 500 },
    },
    Plan {
        id: "growth",
        name: "Growth",
        limits: PlanLimits { storefronts: 5, products: 2_000, recipients_per_month: 5_000 },
    },
    Plan {
        id: "scale",
        name: "Scale",
        limits: PlanLimits { storefronts: 25, products: 20_000, recipients_per_month: 50_000 },
    },
];

pub fn plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}

/// How long a vendor whose payment failed keeps taking orders while Stripe retries.
pub const GRACE_DAYS: i64 = 7;

/// A vendor's subscription as Bestow last read it from Stripe (`V#<v>` / `CONFIG#PLAN`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanState {
    /// The customer on the platform's account, created once per vendor.
    pub customer_id: String,
    pub plan_id: Option<String>,
    pub subscription_id: Option<String>,
    /// When that subscription was created (epoch s): a late event of an older subscription
    /// never replaces a newer one.
    pub subscription_created: Option<i64>,
    /// Stripe's status: `incomplete`, `trialing`, `active`, `past_due`, `unpaid`, `canceled`…
    pub status: Option<String>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// Since when payment has been failing (epoch s): the grace period counts from here.
    pub past_due_since: Option<i64>,
    pub updated_at: String,
}

/// What the vendor may do now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Entitlement {
    /// `none` (never subscribed: onboarded by the operator on a contract, not limited),
    /// `active`, `grace` (payment failing, still served), `lapsed` (past grace, or ended).
    pub standing: String,
    /// The limits in force; `null` when none apply.
    pub limits: Option<PlanLimits>,
    pub can_take_orders: bool,
    /// Until when a failing payment is tolerated (epoch s).
    pub grace_ends_at: Option<i64>,
}

pub fn entitlement(state: Option<&PlanState>, now_epoch_s: i64) -> Entitlement {
    let Some(state) = state.filter(|s| s.subscription_id.is_some()) else {
        return Entitlement { standing: "none".into(), limits: None, can_take_orders: true, grace_ends_at: None };
    };
    let limits = state.plan_id.as_deref().and_then(plan).map(|p| p.limits);
    let standing = |standing: &str, can: bool, grace_ends_at| Entitlement {
        standing: standing.into(),
        limits,
        can_take_orders: can,
        grace_ends_at,
    };
    match state.status.as_deref() {
        Some("active" | "trialing" | "incomplete") => standing("active", true, None),
        Some("past_due" | "unpaid") => {
            let ends = state.past_due_since.unwrap_or(now_epoch_s) + GRACE_DAYS * 86_400;
            if now_epoch_s < ends { standing("grace", true, Some(ends)) } else { standing("lapsed", false, Some(ends)) }
        }
        // canceled, incomplete_expired, paused: the data stays, new orders stop.
        _ => standing("lapsed", false, None),
    }
}

/// Applies Stripe's current view of a subscription to the vendor's state. Returns `None` when
/// it is about an older subscription than the one recorded (a late event after a
/// re-subscription), which must change nothing.
pub fn apply_subscription(
    state: &PlanState,
    subscription: &crate::integrations::stripe::Subscription,
    plan_id: Option<&str>,
    now_epoch_s: i64,
) -> Option<PlanState> {
    let same = state.subscription_id.as_deref() == Some(subscription.id.as_str());
    let newer = state.subscription_created.is_none_or(|created| subscription.created > created);
    if !same && !newer {
        return None;
    }
    let failing = matches!(subscription.status.as_str(), "past_due" | "unpaid");
    let mut next = state.clone();
    next.plan_id = plan_id.map(str::to_owned).or(if same { state.plan_id.clone() } else { None });
    next.subscription_id = Some(subscription.id.clone());
    next.subscription_created = Some(subscription.created);
    next.status = Some(subscription.status.clone());
    next.current_period_end = subscription.current_period_end;
    next.cancel_at_period_end = subscription.cancel_at_period_end;
    next.past_due_since = match (failing, same.then_some(state.past_due_since).flatten()) {
        (true, Some(since)) => Some(since),
        (true, None) => Some(now_epoch_s),
        (false, _) => None,
    };
    Some(next)
}

/// The calendar month (UTC) usage is counted in, `YYYY-MM`.
pub fn usage_month(now: time::OffsetDateTime) -> String {
    format!("{:04}-{:02}", now.year(), u8::from(now.month()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::stripe::Subscription;

    fn subscription(id: &str, status: &str, created: i64) -> Subscription {
        serde_json::from_value(serde_json::json!({
            "id": id, "customer": "cus_1", "status": status, "created": created, "current_period_end": created + 2_592_000,
            "items": { "data": [{ "price": { "id": "price_growth" } }] },
        }))
        .unwrap()
    }

    fn state() -> PlanState {
        PlanState {
            customer_id: "cus_1".into(),
            plan_id: None,
            subscription_id: None,
            subscription_created: None,
            status: None,
            current_period_end: None,
            cancel_at_period_end: false,
            past_due_since: None,
            updated_at: String::new(),
        }
    }

    #[test]
    fn standing_follows_the_subscription_and_the_grace_period() {
        let day = 86_400;
        assert_eq!(entitlement(None, 0).standing, "none");
        assert!(entitlement(None, 0).limits.is_none());
        let active = apply_subscription(&state(), &subscription("sub_1", "active", 100), Some("growth"), 100).unwrap();
        let e = entitlement(Some(&active), 200);
        assert_eq!((e.standing.as_str(), e.can_take_orders), ("active", true));
        assert_eq!(e.limits.unwrap().storefronts, 5);
        let failing = apply_subscription(&active, &subscription("sub_1", "past_due", 100), None, 1_000).unwrap();
        assert_eq!(failing.plan_id.as_deref(), Some("growth"), "the plan stays while payment fails");
        assert_eq!(failing.past_due_since, Some(1_000));
        let still = apply_subscription(&failing, &subscription("sub_1", "unpaid", 100), None, 5_000).unwrap();
        assert_eq!(still.past_due_since, Some(1_000), "grace counts from the first failure");
        assert_eq!(entitlement(Some(&still), 1_000 + 6 * day).standing, "grace");
        let lapsed = entitlement(Some(&still), 1_000 + 7 * day);
        assert_eq!((lapsed.standing.as_str(), lapsed.can_take_orders), ("lapsed", false));
        assert!(lapsed.limits.is_some(), "limits still apply; nothing is taken away");
        let paid = apply_subscription(&still, &subscription("sub_1", "active", 100), None, 9_000).unwrap();
        assert_eq!(paid.past_due_since, None);
        let canceled = apply_subscription(&paid, &subscription("sub_1", "canceled", 100), None, 9_500).unwrap();
        assert!(!entitlement(Some(&canceled), 9_600).can_take_orders);
    }

    #[test]
    fn a_late_event_of_an_older_subscription_changes_nothing() {
        let old = apply_subscription(&state(), &subscription("sub_old", "active", 100), Some("starter"), 100).unwrap();
        let new = apply_subscription(&old, &subscription("sub_new", "active", 500), Some("scale"), 500).unwrap();
        assert!(apply_subscription(&new, &subscription("sub_old", "canceled", 100), None, 600).is_none());
        assert_eq!(new.plan_id.as_deref(), Some("scale"));
    }
}
