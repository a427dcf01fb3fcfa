//! The Xero connection as Bestow records it, and the invoice a statement becomes. Pure.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::billing::model::{StatementRecord, decimal};
use crate::integrations::secrets::SecretRef;
use crate::integrations::xero::{self, AccountRef, ContactRef, InvoiceRef, LineItem, NewInvoice, NewPayment};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    /// Xero refused the refresh token: an admin must connect again.
    NeedsReconnect,
}

/// The platform's Xero connection (`P#XERO` / `CONNECTION`). The tokens are in Secrets
/// Manager; this item names the version in use and serialises refreshes: a worker that must
/// refresh first takes the lease with a conditional write on the version it read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XeroConnectionRecord {
    pub tenant_id: String,
    pub tenant_name: Option<String>,
    pub status: ConnectionStatus,
    /// The token pair's secret version.
    pub tokens: SecretRef,
    /// When the access token stops working (epoch seconds).
    pub access_expires_at: i64,
    /// Bumped by every refresh: a worker whose token Xero refused refreshes only if no one
    /// has since.
    pub generation: u64,
    pub lease_owner: Option<String>,
    /// Epoch milliseconds; an expired lease (its holder died) may be taken over.
    pub lease_until_ms: Option<i64>,
    pub connected_at: String,
    pub refreshed_at: Option<String>,
    pub refreshes: u64,
    pub last_error: Option<String>,
}

/// A pending connect's `state` nonce.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectState {
    pub expires_at: i64,
}

/// The reference Xero shows on a cycle's invoice (and Bestow finds it by).
pub fn invoice_reference(record: &StatementRecord) -> String {
    format!("Bestow {} {}", record.owner_vendor, record.cycle_id)
}

/// Xero's `Idempotency-Key` for one effect of one (cycle, currency): at most 128 characters.
pub fn idempotency_key(stage: &str, effect: &str, record: &StatementRecord, currency: &str) -> String {
    let key = format!("bestow-{stage}-{effect}-{}-{}-{currency}", record.owner_vendor, record.cycle_id);
    key.chars().take(128).collect()
}

/// The invoice of a statement's fees in one currency, dated `dated` (the cycle's end, so every
/// try sends the same body): a line per fee type, due 14 days later.
pub fn invoice_for(
    record: &StatementRecord,
    currency: &str,
    vendor_name: &str,
    sales_account: &str,
    dated: time::Date,
) -> Option<NewInvoice> {
    let figures = record.currencies.iter().find(|c| c.currency == currency)?;
    let mut lines = Vec::new();
    if figures.percentage_fees_minor < 0 {
        lines.push(LineItem {
            description: format!(
                "Platform fee on {} paid orders ({} {}), cycle {}",
                figures.orders,
                currency,
                decimal(figures.orders_minor, currency),
                record.cycle_id
            ),
            quantity: 1.0,
            unit_amount: xero::client::amount(-figures.percentage_fees_minor, currency),
            account_code: sales_account.to_owned(),
        });
    }
    if figures.per_unit_fees_minor < 0 {
        lines.push(LineItem {
            description: format!("Per-recipient fee, {} recipients, cycle {}", figures.units, record.cycle_id),
            quantity: 1.0,
            unit_amount: xero::client::amount(-figures.per_unit_fees_minor, currency),
            account_code: sales_account.to_owned(),
        });
    }
    if lines.is_empty() {
        return None;
    }
    let due = dated.checked_add(time::Duration::days(14)).unwrap_or(dated);
    Some(NewInvoice {
        invoice_type: "ACCREC".into(),
        contact: ContactRef { name: vendor_name.to_owned(), contact_number: record.owner_vendor.clone() },
        date: iso_date(dated),
        due_date: iso_date(due),
        reference: invoice_reference(record),
        currency_code: currency.to_owned(),
        status: "AUTHORISED".into(),
        line_amount_types: "NoTax".into(),
        line_items: lines,
    })
}

/// The payment that settles a cycle's fee invoice: the fees were kept back from the payout.
pub fn payment_for(
    invoice_id: &str,
    amount_minor: i64,
    currency: &str,
    reference: &str,
    payout_account: &str,
    today: time::Date,
) -> NewPayment {
    NewPayment {
        invoice: InvoiceRef { invoice_id: invoice_id.to_owned() },
        account: AccountRef { code: payout_account.to_owned() },
        date: iso_date(today),
        amount: xero::client::amount(amount_minor, currency),
        reference: reference.to_owned(),
    }
}

pub fn iso_date(date: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::model::{CurrencyStatement, CycleKind};

    fn record() -> StatementRecord {
        StatementRecord {
            owner_vendor: "acme".into(),
            cycle_id: "2026-11".into(),
            cycle: CycleKind::Monthly,
            period_start: "2026-10-31T23:00:00Z".into(),
            period_end: "2026-11-30T23:00:00Z".into(),
            currencies: vec![CurrencyStatement {
                currency: "EUR".into(),
                orders: 2,
                units: 5,
                orders_minor: 20_000,
                percentage_fees_minor: -500,
                per_unit_fees_minor: -375,
                fees_minor: -875,
                ..CurrencyStatement::default()
            }],
            json_key: "k.json".into(),
            pdf_key: "k.pdf".into(),
            invoices: vec![],
            payouts: vec![],
            closed_at: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn an_invoice_has_a_line_per_fee_type_that_adds_up_to_the_fees() {
        let today = time::macros::date!(2026 - 12 - 01);
        let invoice = invoice_for(&record(), "EUR", "Acme Gifts", "200", today).unwrap();
        assert_eq!(invoice.line_items.len(), 2);
        let total: f64 = invoice.line_items.iter().map(|l| l.quantity * l.unit_amount).sum();
        assert_eq!(xero::client::minor(total, "EUR"), 875);
        assert_eq!((invoice.date.as_str(), invoice.due_date.as_str()), ("2026-12-01", "2026-12-15"));
        assert_eq!(invoice.contact.contact_number, "acme");
        assert!(invoice_for(&record(), "USD", "Acme", "200", today).is_none());
        let key = idempotency_key("prod", "invoice", &record(), "EUR");
        assert_eq!(key, "bestow-prod-invoice-acme-2026-11-EUR");
    }
}
