//! The vendor's ledger: every money movement as an immutable entry in integer minor units,
//! with its currency and the id of what caused it. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A buyer's order paid through the vendor's Stripe account (+).
    OrderPaid,
    /// Money returned to a buyer (−).
    Refund,
    /// The platform's fee on the vendor's sales (−).
    PlatformFee,
    /// The vendor's own plan with the platform (−).
    SubscriptionCharge,
    /// Money paid out to the vendor (−): what settles the balance.
    Payout,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaid => "order_paid",
            Self::Refund => "refund",
            Self::PlatformFee => "platform_fee",
            Self::SubscriptionCharge => "subscription_charge",
            Self::Payout => "payout",
        }
    }

    /// The sign every entry of the kind carries: the ledger refuses the other.
    fn sign(self) -> i64 {
        match self {
            Self::OrderPaid => 1,
            _ => -1,
        }
    }
}

/// One money movement. Never changed once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    pub kind: EntryKind,
    /// Signed, in the currency's minor unit: + what the vendor is owed, − what reduces it.
    pub amount_minor: i64,
    /// ISO 4217.
    pub currency: String,
    /// What caused it (an order id, a refund id, a fee's or payout's id): one entry per
    /// (kind, source), however often the cause is processed.
    pub source_id: String,
    pub order_id: Option<String>,
    /// RFC 3339; the ledger is ordered by it.
    pub occurred_at: String,
    pub description: String,
    /// The recipients (fulfilment units) an order paid for: what a per-unit fee counts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub units: u32,
    /// Which of the platform's fees a `platform_fee` entry is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_type: Option<FeeType>,
}

/// The platform's fee types: one Xero invoice line each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeeType {
    /// A share of each paid order's total.
    Percentage,
    /// A fixed amount per recipient of each paid order.
    PerUnit,
}

impl FeeType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Percentage => "percentage",
            Self::PerUnit => "per_unit",
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("a {kind} entry must be {expected}, not {amount}")]
    WrongSign { kind: &'static str, expected: &'static str, amount: i64 },
    #[error("the currency {0} is not an ISO 4217 code")]
    Currency(String),
    #[error("an entry needs the id of its cause")]
    NoSource,
    #[error("{0} is not an RFC 3339 time")]
    Time(String),
}

impl LedgerEntry {
    /// An entry of `kind` for `magnitude` (≥ 0): the sign comes from the kind.
    pub fn new(
        kind: EntryKind,
        magnitude: i64,
        currency: &str,
        source_id: &str,
        order_id: Option<&str>,
        occurred_at: &str,
        description: impl Into<String>,
    ) -> Result<Self, EntryError> {
        let entry = Self {
            kind,
            amount_minor: magnitude.saturating_mul(kind.sign()),
            currency: currency.to_owned(),
            source_id: source_id.to_owned(),
            order_id: order_id.map(str::to_owned),
            occurred_at: occurred_at.to_owned(),
            description: description.into(),
            units: 0,
            fee_type: None,
        };
        entry.check()?;
        Ok(entry)
    }

    pub fn with_units(mut self, units: u32) -> Self {
        self.units = units;
        self
    }

    pub fn with_fee_type(mut self, fee_type: FeeType) -> Self {
        self.fee_type = Some(fee_type);
        self
    }

    /// When it happened, as an instant (entries are written with RFC 3339 UTC stamps).
    pub fn instant(&self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::parse(&self.occurred_at, &time::format_description::well_known::Rfc3339).ok()
    }

    pub fn check(&self) -> Result<(), EntryError> {
        if self.source_id.is_empty() {
            return Err(EntryError::NoSource);
        }
        if self.instant().is_none() {
            return Err(EntryError::Time(self.occurred_at.clone()));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EntryError::Currency(self.currency.clone()));
        }
        let sign = self.kind.sign();
        if self.amount_minor != 0 && self.amount_minor.signum() != sign {
            return Err(EntryError::WrongSign {
                kind: self.kind.as_str(),
                expected: if sign > 0 { "positive" } else { "negative" },
                amount: self.amount_minor,
            });
        }
        Ok(())
    }
}

/// A period's totals in one currency; `net` is what they add up to (what the vendor is owed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrencyTotals {
    pub orders_minor: i64,
    pub refunds_minor: i64,
    pub fees_minor: i64,
    pub subscriptions_minor: i64,
    pub payouts_minor: i64,
    pub net_minor: i64,
    pub entries: u64,
}

/// Totals per currency of a set of entries, summed in i128 (a sum that would not fit an i64
/// is an error, not a wrapped number).
pub fn totals(entries: &[LedgerEntry]) -> Result<BTreeMap<String, CurrencyTotals>, String> {
    #[derive(Default)]
    struct Wide {
        by_kind: BTreeMap<EntryKind, i128>,
        entries: u64,
    }
    let mut wide: BTreeMap<String, Wide> = BTreeMap::new();
    for entry in entries {
        let sums = wide.entry(entry.currency.clone()).or_default();
        *sums.by_kind.entry(entry.kind).or_default() += i128::from(entry.amount_minor);
        sums.entries += 1;
    }
    let narrow = |v: i128| i64::try_from(v).map_err(|_| format!("a total of {v} does not fit"));
    wide.into_iter()
        .map(|(currency, w)| {
            let get = |k: EntryKind| narrow(w.by_kind.get(&k).copied().unwrap_or(0));
            let totals = CurrencyTotals {
                orders_minor: get(EntryKind::OrderPaid)?,
                refunds_minor: get(EntryKind::Refund)?,
                fees_minor: get(EntryKind::PlatformFee)?,
                subscriptions_minor: get(EntryKind::SubscriptionCharge)?,
                payouts_minor: get(EntryKind::Payout)?,
                net_minor: narrow(w.by_kind.values().sum())?,
                entries: w.entries,
            };
            Ok((currency, totals))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, amount: i64, currency: &str, source: &str) -> LedgerEntry {
        LedgerEntry::new(kind, amount, currency, source, None, "2026-11-26T10:00:00Z", "t").unwrap()
    }

    #[test]
    fn signs_come_from_the_kind_and_totals_add_up_per_currency() {
        let entries = vec![
            entry(EntryKind::OrderPaid, 10_000, "EUR", "o1"),
            entry(EntryKind::OrderPaid, 2_500, "EUR", "o2"),
            entry(EntryKind::Refund, 1_250, "EUR", "r1"),
            entry(EntryKind::PlatformFee, 375, "EUR", "f1"),
            entry(EntryKind::Payout, 5_000, "EUR", "p1"),
            entry(EntryKind::OrderPaid, 700, "USD", "o3"),
        ];
        let totals = totals(&entries).unwrap();
        let eur = &totals["EUR"];
        assert_eq!(
            (eur.orders_minor, eur.refunds_minor, eur.fees_minor, eur.payouts_minor),
            (12_500, -1_250, -375, -5_000)
        );
        assert_eq!(eur.net_minor, 12_500 - 1_250 - 375 - 5_000);
        assert_eq!(eur.entries, 5);
        assert_eq!(totals["USD"].net_minor, 700);
    }

    #[test]
    fn wrong_signs_bad_currencies_and_overflowing_totals_are_refused() {
        let mut refund = entry(EntryKind::Refund, 100, "EUR", "r");
        refund.amount_minor = 100;
        assert!(matches!(refund.check(), Err(EntryError::WrongSign { .. })));
        let at = "2026-11-26T10:00:00Z";
        assert!(LedgerEntry::new(EntryKind::OrderPaid, 1, "eur", "o", None, at, "").is_err());
        assert!(LedgerEntry::new(EntryKind::OrderPaid, 1, "EUR", "", None, at, "").is_err());
        assert!(LedgerEntry::new(EntryKind::OrderPaid, 1, "EUR", "o", None, "yesterday", "").is_err());
        let huge = vec![entry(EntryKind::OrderPaid, i64::MAX, "EUR", "a"), entry(EntryKind::OrderPaid, 1, "EUR", "b")];
        assert!(totals(&huge).is_err());
    }
}
