//! Money after the sale: a vendor's payout cycle and platform fees, the statement that closes a
//! cycle, and the plan the vendor pays the platform for. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::ledger::model::{EntryKind, FeeType, LedgerEntry};

// ---------------------------------------------------------------- payout terms

/// How often a vendor's cycle closes, at midnight in the vendor's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CycleKind {
    /// ISO weeks, Monday to Monday; ids like `2026-W48`.
    Weekly,
    /// Calendar months; ids like `2026-11`.
    Monthly,
}

/// What the platform charges a vendor, and how often it settles: set by a platform admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayoutTerms {
    pub cycle: CycleKind,
    /// A share of each paid order's total, in basis points (250 is 2.5 %).
    #[serde(default)]
    pub fee_basis_points: u32,
    /// A fixed fee per recipient of each paid order, in the order currency's minor unit.
    #[serde(default)]
    pub fee_per_unit_minor: i64,
}

impl Default for PayoutTerms {
    /// A vendor nobody set terms for: monthly, no fees.
    fn default() -> Self {
        Self { cycle: CycleKind::Monthly, fee_basis_points: 0, fee_per_unit_minor: 0 }
    }
}

/// At most 50 % of a sale and 1,000.00 per unit: past that, a typo.
const MAX_FEE_BASIS_POINTS: u32 = 5_000;
const MAX_FEE_PER_UNIT: i64 = 100_000;

impl PayoutTerms {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.fee_basis_points > MAX_FEE_BASIS_POINTS {
            errors.push(FieldError::new("/fee_basis_points", format!("is at most {MAX_FEE_BASIS_POINTS} (50 %)")));
        }
        if !(0..=MAX_FEE_PER_UNIT).contains(&self.fee_per_unit_minor) {
            errors.push(FieldError::new("/fee_per_unit_minor", format!("is between 0 and {MAX_FEE_PER_UNIT}")));
        }
        errors
    }

    /// The fees of one paid order: a share of its total (rounded half up to the minor unit)
    /// and a fixed amount per recipient. Zero fees are left out.
    pub fn fees_of(&self, order: &LedgerEntry) -> Vec<(FeeType, i64)> {
        let total = i128::from(order.amount_minor.max(0));
        let share = (total * i128::from(self.fee_basis_points) + 5_000) / 10_000;
        let per_unit = i128::from(self.fee_per_unit_minor) * i128::from(order.units);
        [(FeeType::Percentage, share), (FeeType::PerUnit, per_unit)]
            .into_iter()
            .filter(|(_, amount)| *amount > 0)
            .map(|(fee, amount)| (fee, i64::try_from(amount).unwrap_or(i64::MAX)))
            .collect()
    }
}

/// The source id of an order's fee of one type: one fee entry per (order, type), ever.
pub fn fee_source(order_id: &str, fee: FeeType) -> String {
    format!("{order_id}:{}", fee.as_str())
}

// ---------------------------------------------------------------- cycles

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    #[error("{0} is not a cycle id (2026-11 for a month, 2026-W48 for a week)")]
    Id(String),
    #[error("the time zone {0} is unknown")]
    TimeZone(String),
    #[error("{0}")]
    Time(String),
}

/// One closed-or-open period of a vendor's cycle: `[start, end)` as instants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub id: String,
    pub kind: CycleKind,
    pub start: time::OffsetDateTime,
    pub end: time::OffsetDateTime,
}

fn to_time(ts: jiff::Timestamp) -> Result<time::OffsetDateTime, CycleError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).map_err(|e| CycleError::Time(e.to_string()))
}

fn zone(timezone: &str) -> Result<jiff::tz::TimeZone, CycleError> {
    jiff::tz::TimeZone::get(timezone).map_err(|_| CycleError::TimeZone(timezone.to_owned()))
}

/// Local midnight of a date, as an instant (a midnight skipped by a DST change is the first
/// instant of that day).
fn midnight(date: jiff::civil::Date, tz: &jiff::tz::TimeZone) -> Result<time::OffsetDateTime, CycleError> {
    let zoned = date.to_zoned_datetime(tz.clone()).map_err(|e| CycleError::Time(e.to_string()))?;
    to_time(zoned.timestamp())
}

/// How long after a cycle's end it is closed: entries stamped just before midnight may commit
/// a moment after it, and must still land in their cycle's statement.
pub const SETTLE: time::Duration = time::Duration::minutes(15);

fn cycle_span(kind: CycleKind) -> jiff::Span {
    match kind {
        CycleKind::Monthly => jiff::Span::new().months(1),
        CycleKind::Weekly => jiff::Span::new().days(7),
    }
}

fn first_day(kind: CycleKind, id: &str) -> Result<jiff::civil::Date, CycleError> {
    let bad = || CycleError::Id(id.to_owned());
    if !id.bytes().all(|b| b.is_ascii_digit() || b == b'-' || b == b'W') {
        return Err(bad());
    }
    match kind {
        CycleKind::Monthly => {
            let (year, month) = id.split_once('-').ok_or_else(bad)?;
            if year.len() != 4 || month.len() != 2 {
                return Err(bad());
            }
            let (year, month) = (year.parse::<i16>().map_err(|_| bad())?, month.parse::<i8>().map_err(|_| bad())?);
            jiff::civil::Date::new(year, month, 1).map_err(|_| bad())
        }
        CycleKind::Weekly => {
            let (year, week) = id.split_once("-W").ok_or_else(bad)?;
            if year.len() != 4 || week.len() != 2 {
                return Err(bad());
            }
            let (year, week) = (year.parse::<i16>().map_err(|_| bad())?, week.parse::<i8>().map_err(|_| bad())?);
            let iso = jiff::civil::ISOWeekDate::new(year, week, jiff::civil::Weekday::Monday).map_err(|_| bad())?;
            Ok(iso.date())
        }
    }
}

fn id_of(kind: CycleKind, first: jiff::civil::Date) -> String {
    match kind {
        CycleKind::Monthly => format!("{:04}-{:02}", first.year(), first.month()),
        CycleKind::Weekly => {
            let iso = first.iso_week_date();
            format!("{:04}-W{:02}", iso.year(), iso.week())
        }
    }
}

fn next_first(kind: CycleKind, first: jiff::civil::Date) -> Result<jiff::civil::Date, CycleError> {
    first.checked_add(cycle_span(kind)).map_err(|e| CycleError::Time(e.to_string()))
}

impl Cycle {
    /// The cycle `id` of `kind` in the vendor's time zone.
    pub fn parse(kind: CycleKind, id: &str, timezone: &str) -> Result<Self, CycleError> {
        let tz = zone(timezone)?;
        let first = first_day(kind, id)?;
        // One spelling per cycle: `2026-11` is the cycle, not `2026-011`.
        if id_of(kind, first) != id {
            return Err(CycleError::Id(id.to_owned()));
        }
        Ok(Self {
            id: id_of(kind, first),
            kind,
            start: midnight(first, &tz)?,
            end: midnight(next_first(kind, first)?, &tz)?,
        })
    }

    /// The last cycle that has ended by `now`: the one before the cycle `now` is in.
    pub fn last_closed(kind: CycleKind, timezone: &str, now: time::OffsetDateTime) -> Result<Self, CycleError> {
        let tz = zone(timezone)?;
        let now = jiff::Timestamp::from_nanosecond(now.unix_timestamp_nanos())
            .map_err(|e| CycleError::Time(e.to_string()))?;
        let today = now.to_zoned_datetime(tz).date();
        let current_first = match kind {
            CycleKind::Monthly => today.first_of_month(),
            CycleKind::Weekly => today
                .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
                .map_err(|e| CycleError::Time(e.to_string()))?,
        };
        let previous = current_first.checked_sub(cycle_span(kind)).map_err(|e| CycleError::Time(e.to_string()))?;
        Self::parse(kind, &id_of(kind, previous), timezone)
    }
}

// ---------------------------------------------------------------- statements

/// A cycle's figures in one currency, from its ledger entries. `net_payable_minor` is what the
/// vendor is owed for the cycle: orders, less refunds, less the platform's fees, less what the
/// previous statement left owing. Plan charges are shown but not deducted: Stripe Billing
/// collects them from the vendor's card.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrencyStatement {
    pub currency: String,
    pub orders: u32,
    pub units: u64,
    pub orders_minor: i64,
    pub refunds: u32,
    pub refunds_minor: i64,
    pub percentage_fees_minor: i64,
    pub per_unit_fees_minor: i64,
    pub fees_minor: i64,
    pub subscriptions_minor: i64,
    /// Payouts made during the cycle (they settle earlier cycles).
    pub payouts_minor: i64,
    /// What the vendor still owed from the previous statement (its negative net payable: more
    /// refunded than sold), set off against this cycle.
    #[serde(default)]
    pub carried_in_minor: i64,
    pub net_payable_minor: i64,
}

/// A closed cycle's statement: what the vendor downloads (JSON and PDF) and what the Xero
/// invoice is made from. Built only from the ledger, so it is the same however often built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Statement {
    pub vendor_id: String,
    pub vendor_name: String,
    pub cycle_id: String,
    pub cycle: CycleKind,
    pub timezone: String,
    /// RFC 3339 UTC: `[period_start, period_end)`.
    pub period_start: String,
    pub period_end: String,
    pub terms: PayoutTerms,
    pub currencies: Vec<CurrencyStatement>,
    pub entries: Vec<LedgerEntry>,
}

pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl Statement {
    /// The statement of `cycle` from its entries; `carried_in` is what the previous statement
    /// left owing per currency (negative amounts).
    pub fn build(
        vendor: &crate::vendors::model::Vendor,
        cycle: &Cycle,
        terms: &PayoutTerms,
        mut entries: Vec<LedgerEntry>,
        carried_in: &BTreeMap<String, i64>,
    ) -> Result<Self, String> {
        entries.sort_by(|a, b| (a.instant(), a.kind, &a.source_id).cmp(&(b.instant(), b.kind, &b.source_id)));
        let mut wide: BTreeMap<&str, (CurrencyStatement, [i128; 7])> = BTreeMap::new();
        for (currency, owed) in carried_in.iter().filter(|(_, owed)| **owed < 0) {
            let (figures, sums) = wide.entry(currency.as_str()).or_default();
            figures.carried_in_minor = *owed;
            sums[6] += i128::from(*owed);
        }
        for entry in &entries {
            let (figures, sums) = wide.entry(entry.currency.as_str()).or_default();
            let amount = i128::from(entry.amount_minor);
            let slot = match (entry.kind, entry.fee_type) {
                (EntryKind::OrderPaid, _) => {
                    figures.orders += 1;
                    figures.units += u64::from(entry.units);
                    0
                }
                (EntryKind::Refund, _) => {
                    figures.refunds += 1;
                    1
                }
                (EntryKind::PlatformFee, Some(FeeType::PerUnit)) => 3,
                (EntryKind::PlatformFee, _) => 2,
                (EntryKind::SubscriptionCharge, _) => 4,
                (EntryKind::Payout, _) => 5,
            };
            sums[slot] += amount;
            if slot <= 3 {
                sums[6] += amount;
            }
        }
        let narrow = |v: i128| i64::try_from(v).map_err(|_| format!("a total of {v} does not fit"));
        let mut currencies = Vec::with_capacity(wide.len());
        for (currency, (mut figures, sums)) in wide {
            figures.currency = currency.to_owned();
            figures.orders_minor = narrow(sums[0])?;
            figures.refunds_minor = narrow(sums[1])?;
            figures.percentage_fees_minor = narrow(sums[2])?;
            figures.per_unit_fees_minor = narrow(sums[3])?;
            figures.fees_minor = narrow(sums[2] + sums[3])?;
            figures.subscriptions_minor = narrow(sums[4])?;
            figures.payouts_minor = narrow(sums[5])?;
            figures.net_payable_minor = narrow(sums[6])?;
            currencies.push(figures);
        }
        Ok(Self {
            vendor_id: vendor.id.clone(),
            vendor_name: vendor.legal_name.clone().unwrap_or_else(|| vendor.name.clone()),
            cycle_id: cycle.id.clone(),
            cycle: cycle.kind,
            timezone: vendor.timezone.clone(),
            period_start: rfc3339(cycle.start),
            period_end: rfc3339(cycle.end),
            terms: terms.clone(),
            currencies,
            entries,
        })
    }

    pub fn currency(&self, currency: &str) -> Option<&CurrencyStatement> {
        self.currencies.iter().find(|c| c.currency == currency)
    }
}

/// Where a statement's invoice (one per currency with fees) stands in Xero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    /// The job that creates it is queued or retrying.
    Pending,
    /// Created in Xero; `xero_status` says what Xero last reported (AUTHORISED, PAID, VOIDED…).
    Created,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct XeroInvoiceRef {
    pub currency: String,
    /// The fees invoiced, in minor units (positive).
    pub amount_minor: i64,
    pub state: InvoiceState,
    pub invoice_id: Option<String>,
    pub invoice_number: Option<String>,
    pub xero_status: Option<String>,
    /// What Xero says is still due, in minor units.
    pub amount_due_minor: Option<i64>,
    /// Whether the statement's PDF is attached to it in Xero.
    #[serde(default)]
    pub attached: bool,
    /// Whether the payout's payment was recorded against it in Xero.
    pub payment_recorded: bool,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PayoutRecord {
    pub currency: String,
    pub amount_minor: i64,
    pub reference: String,
    pub paid_at: String,
}

/// A closed cycle as stored: its figures, where its documents are, its Xero invoices and its
/// payouts. One per (vendor, cycle), written once; the invoice and payout parts then move.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatementRecord {
    pub owner_vendor: String,
    pub cycle_id: String,
    pub cycle: CycleKind,
    pub period_start: String,
    pub period_end: String,
    pub currencies: Vec<CurrencyStatement>,
    pub json_key: String,
    pub pdf_key: String,
    pub invoices: Vec<XeroInvoiceRef>,
    pub payouts: Vec<PayoutRecord>,
    pub closed_at: String,
}

impl StatementRecord {
    pub fn invoice_mut(&mut self, currency: &str) -> Option<&mut XeroInvoiceRef> {
        self.invoices.iter_mut().find(|i| i.currency == currency)
    }
}

/// The statement as a PDF: period, per-currency figures, then every entry.
pub fn render_statement(statement: &Statement) -> Vec<u8> {
    use crate::pdf::TextPdf;
    let mut pdf = TextPdf::new(&format!(
        "Statement {} — {} — {} to {} ({})",
        statement.cycle_id, statement.vendor_name, statement.period_start, statement.period_end, statement.timezone
    ));
    let terms = &statement.terms;
    pdf.text(
        0.0,
        9.0,
        false,
        &format!(
            "Platform fees: {}.{:02} % of each paid order, plus {} minor units per recipient",
            terms.fee_basis_points / 100,
            terms.fee_basis_points % 100,
            terms.fee_per_unit_minor
        ),
    );
    pdf.gap(6.0);
    for c in &statement.currencies {
        let money = |v: i64| format!("{} {}", c.currency, decimal(v, &c.currency));
        pdf.text(0.0, 11.0, true, &format!("{} — net payable {}", c.currency, money(c.net_payable_minor)));
        let lines = [
            format!("Orders paid: {} ({} recipients)   {}", c.orders, c.units, money(c.orders_minor)),
            format!("Refunds: {}   {}", c.refunds, money(c.refunds_minor)),
            format!("Platform fee, percentage   {}", money(c.percentage_fees_minor)),
            format!("Platform fee, per recipient   {}", money(c.per_unit_fees_minor)),
            format!("Plan charges (paid by card, not deducted)   {}", money(c.subscriptions_minor)),
            format!("Payouts made in the period   {}", money(c.payouts_minor)),
            format!("Owed from the previous statement   {}", money(c.carried_in_minor)),
        ];
        for line in lines {
            pdf.text(14.0, 9.0, false, &line);
        }
        pdf.rule();
        pdf.gap(4.0);
    }
    pdf.text(0.0, 10.0, true, &format!("Entries ({})", statement.entries.len()));
    for e in &statement.entries {
        pdf.text(
            14.0,
            8.0,
            false,
            &format!(
                "{}  {:<20} {:>14} {}  {}",
                e.occurred_at.get(..19).unwrap_or(&e.occurred_at),
                e.fee_type.map_or(e.kind.as_str(), |f| if f == FeeType::PerUnit {
                    "fee per recipient"
                } else {
                    "fee percentage"
                }),
                decimal(e.amount_minor, &e.currency),
                e.currency,
                e.source_id
            ),
        );
    }
    pdf.finish()
}

/// A minor-unit amount as a decimal string in its currency (`12345` EUR → `123.45`).
pub fn decimal(amount_minor: i64, currency: &str) -> String {
    let exponent = crate::shopify::model::minor_digits(currency);
    if exponent == 0 {
        return amount_minor.to_string();
    }
    let scale = 10i64.pow(exponent);
    let sign = if amount_minor < 0 { "-" } else { "" };
    let magnitude = amount_minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale.unsigned_abs(),
        magnitude % scale.unsigned_abs(),
        width = exponent as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn monthly_cycles_run_midnight_to_midnight_in_the_vendor_zone() {
        let cycle = Cycle::parse(CycleKind::Monthly, "2026-11", "Europe/Berlin").unwrap();
        assert_eq!(rfc3339(cycle.start), "2026-10-31T23:00:00Z", "CET is UTC+1 in November");
        assert_eq!(rfc3339(cycle.end), "2026-11-30T23:00:00Z");
        // March holds the change to summer time: it starts at UTC+1 and ends at UTC+2.
        let march = Cycle::parse(CycleKind::Monthly, "2026-03", "Europe/Berlin").unwrap();
        assert_eq!(
            (rfc3339(march.start).as_str(), rfc3339(march.end).as_str()),
            ("2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z")
        );
        let auckland = Cycle::parse(CycleKind::Monthly, "2026-12", "Pacific/Auckland").unwrap();
        assert_eq!(rfc3339(auckland.start), "2026-11-30T11:00:00Z");
    }

    #[test]
    fn weekly_cycles_are_iso_weeks() {
        let cycle = Cycle::parse(CycleKind::Weekly, "2026-W01", "UTC").unwrap();
        assert_eq!(
            (rfc3339(cycle.start).as_str(), rfc3339(cycle.end).as_str()),
            ("2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z")
        );
        let last = Cycle::last_closed(CycleKind::Weekly, "America/New_York", at("2026-11-26T06:00:00Z")).unwrap();
        assert_eq!(last.id, "2026-W47");
        assert_eq!(rfc3339(last.start), "2026-11-16T05:00:00Z");
        // 02:00 UTC on the 1st is still the 31st in New York: October is not over there.
        let month = Cycle::last_closed(CycleKind::Monthly, "America/New_York", at("2026-11-01T02:00:00Z")).unwrap();
        assert_eq!(month.id, "2026-09");
        let month = Cycle::last_closed(CycleKind::Monthly, "Europe/Berlin", at("2026-11-01T02:00:00Z")).unwrap();
        assert_eq!(month.id, "2026-10");
        for bad in ["2026-13", "2026-W54", "26-11", "2026/11", "", "+026-11", "2026-1", "2026-W7"] {
            assert!(
                Cycle::parse(CycleKind::Monthly, bad, "UTC").is_err()
                    || Cycle::parse(CycleKind::Weekly, bad, "UTC").is_err()
            );
        }
        assert!(matches!(Cycle::parse(CycleKind::Monthly, "2026-11", "Mars/Olympus"), Err(CycleError::TimeZone(_))));
    }

    #[test]
    fn fees_round_half_up_and_count_units() {
        let terms = PayoutTerms { cycle: CycleKind::Monthly, fee_basis_points: 250, fee_per_unit_minor: 75 };
        let order = LedgerEntry::new(EntryKind::OrderPaid, 10_010, "EUR", "o1", Some("o1"), "2026-11-02T10:00:00Z", "")
            .unwrap()
            .with_units(3);
        // 2.5 % of 100.10 is 2.5025 → 2.50; 3 units × 0.75.
        assert_eq!(terms.fees_of(&order), vec![(FeeType::Percentage, 250), (FeeType::PerUnit, 225)]);
        let half = LedgerEntry::new(EntryKind::OrderPaid, 20, "EUR", "o2", None, "2026-11-02T10:00:00Z", "").unwrap();
        assert_eq!(terms.fees_of(&half), vec![(FeeType::Percentage, 1)], "0.5 minor units round up");
        assert!(PayoutTerms::default().fees_of(&order).is_empty());
        let bad = PayoutTerms { cycle: CycleKind::Weekly, fee_basis_points: 9_000, fee_per_unit_minor: -1 };
        assert_eq!(bad.validate().len(), 2);
    }

    #[test]
    fn a_statement_adds_up_and_sets_off_what_the_last_one_left_owing() {
        let vendor = crate::vendors::model::Vendor {
            id: "acme".into(),
            name: "Acme".into(),
            legal_name: None,
            contact_email: "a@acme.example".into(),
            country: "DE".into(),
            currency: "EUR".into(),
            timezone: "Europe/Berlin".into(),
            status: crate::vendors::model::VendorStatus::Active,
            suspended_reason: None,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        let cycle = Cycle::parse(CycleKind::Monthly, "2026-11", "Europe/Berlin").unwrap();
        let terms = PayoutTerms { cycle: CycleKind::Monthly, fee_basis_points: 250, fee_per_unit_minor: 75 };
        let at = "2026-11-10T10:00:00Z";
        let order =
            LedgerEntry::new(EntryKind::OrderPaid, 10_000, "EUR", "o1", Some("o1"), at, "").unwrap().with_units(2);
        let mut entries =
            vec![order.clone(), LedgerEntry::new(EntryKind::Refund, 5_000, "EUR", "r1", None, at, "").unwrap()];
        for (fee, amount) in terms.fees_of(&order) {
            entries.push(
                LedgerEntry::new(EntryKind::PlatformFee, amount, "EUR", &fee_source("o1", fee), None, at, "")
                    .unwrap()
                    .with_fee_type(fee),
            );
        }
        let owed = BTreeMap::from([("EUR".to_owned(), -1_200), ("USD".to_owned(), -300), ("GBP".to_owned(), 50)]);
        let statement = Statement::build(&vendor, &cycle, &terms, entries, &owed).unwrap();
        let eur = statement.currency("EUR").unwrap();
        assert_eq!(
            (eur.orders_minor, eur.refunds_minor, eur.percentage_fees_minor, eur.per_unit_fees_minor),
            (10_000, -5_000, -250, -150)
        );
        assert_eq!(eur.carried_in_minor, -1_200);
        assert_eq!(eur.net_payable_minor, 10_000 - 5_000 - 250 - 150 - 1_200);
        // A currency with nothing but a debt still has its section; a positive "debt" is none.
        assert_eq!(statement.currency("USD").unwrap().net_payable_minor, -300);
        assert!(statement.currency("GBP").is_none());
    }

    #[test]
    fn decimals_follow_the_currency_exponent() {
        assert_eq!(decimal(12_345, "EUR"), "123.45");
        assert_eq!(decimal(-5, "EUR"), "-0.05");
        assert_eq!(decimal(500, "JPY"), "500");
    }
}
