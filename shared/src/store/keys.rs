//! Every key of the table is built here, and nowhere else.
//!
//! Tenant partitions are `V#<vendor>` or `V#<vendor>#<sub-partition>`, so an IAM policy with
//! `dynamodb:LeadingKeys` matching `V#<vendor>` and `V#<vendor>#*` could enforce the same
//! boundary as the types do. Global lookups (few, reached only by resolvers) live under `G#`;
//! the platform's own directory under `P#`.

use crate::tenancy::{PlatformScope, TenantScope, VendorId};

pub const TENANT_PREFIX: &str = "V#";
pub const GLOBAL_PREFIX: &str = "G#";
pub const PLATFORM_PREFIX: &str = "P#";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

fn vendor_partition(vendor: &VendorId) -> String {
    format!("{TENANT_PREFIX}{vendor}")
}

/// The partition holding a vendor's configuration (and, later, its small entities).
pub fn tenant_partition(scope: &TenantScope) -> String {
    vendor_partition(scope.vendor_id())
}

/// A key in the vendor's main partition.
pub fn tenant_key(scope: &TenantScope, sk: impl Into<String>) -> Key {
    Key { pk: tenant_partition(scope), sk: sk.into() }
}

/// An idempotency record (of a job or of an HTTP request): one partition per record under
/// the vendor's prefix, so a burst of jobs never heats a single key.
pub fn idempotency_key(scope: &TenantScope, kind: &str, key: &str) -> Key {
    Key {
        pk: format!("{}#IDEMPOTENCY#{}#{}", tenant_partition(scope), escape(kind), escape(key)),
        sk: "IDEMPOTENCY".to_owned(),
    }
}

/// An idempotency record of a platform-admin request (creating a vendor).
pub fn platform_idempotency_key(_scope: &PlatformScope, kind: &str, key: &str) -> Key {
    Key { pk: format!("{PLATFORM_PREFIX}IDEMPOTENCY#{}#{}", escape(kind), escape(key)), sk: "IDEMPOTENCY".to_owned() }
}

/// Caller-chosen parts of a key may contain the separator: escaped, two different
/// (kind, key) pairs can never make the same key.
fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

// ---------------------------------------------------------------- catalogue

/// Sort key of a product item; its variants share the partition, so one Query reads a
/// product's whole variant set.
pub const PRODUCT_SK: &str = "PRODUCT";
pub const VARIANT_SK_PREFIX: &str = "VARIANT#";

fn product_partition(scope: &TenantScope, product_id: &str) -> String {
    format!("{}#PRODUCT#{}", tenant_partition(scope), escape(product_id))
}

pub fn product_key(scope: &TenantScope, product_id: &str) -> Key {
    Key { pk: product_partition(scope, product_id), sk: PRODUCT_SK.to_owned() }
}

pub fn variant_key(scope: &TenantScope, product_id: &str, variant_id: &str) -> Key {
    Key { pk: product_partition(scope, product_id), sk: format!("{VARIANT_SK_PREFIX}{}", escape(variant_id)) }
}

/// The partition of a product's variants (with the sort-key prefix [`VARIANT_SK_PREFIX`]).
pub fn variants_partition(scope: &TenantScope, product_id: &str) -> String {
    product_partition(scope, product_id)
}

/// GSI1 partition listing the vendor's products (GSI1SK: the product id, so oldest first).
pub fn product_list_partition(scope: &TenantScope) -> String {
    format!("{}#PRODUCTS", tenant_partition(scope))
}

/// The claim that makes a handle unique per vendor: written in the same transaction as the
/// product that takes it.
pub fn product_handle_key(scope: &TenantScope, handle: &str) -> Key {
    Key { pk: format!("{}#HANDLE#{}", tenant_partition(scope), escape(handle)), sk: "HANDLE".to_owned() }
}

/// The claim that makes a SKU unique per vendor (one partition per SKU, so a bulk import
/// never heats one key): written in the same transaction as the variant that takes it.
pub fn sku_key(scope: &TenantScope, sku: &str) -> Key {
    Key { pk: format!("{}#SKU#{}", tenant_partition(scope), escape(sku)), sk: "SKU".to_owned() }
}

// ---------------------------------------------------------------- storefronts

pub const STOREFRONT_SK_PREFIX: &str = "STOREFRONT#";

/// A storefront, in the vendor's main partition (a vendor has few).
pub fn storefront_key(scope: &TenantScope, storefront_id: &str) -> Key {
    tenant_key(scope, format!("{STOREFRONT_SK_PREFIX}{}", escape(storefront_id)))
}

/// What a storefront lookup is by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupBy {
    Slug,
    Host,
}

/// The global item that maps a storefront's slug or host to its vendor: written with the
/// storefront (so slugs and hosts are unique platform-wide), read only by the resolver.
pub fn storefront_lookup_key(by: LookupBy, value: &str) -> Key {
    let kind = match by {
        LookupBy::Slug => "SLUG",
        LookupBy::Host => "HOST",
    };
    Key { pk: format!("{GLOBAL_PREFIX}STOREFRONT#{kind}#{}", escape(value)), sk: "LOOKUP".to_owned() }
}

fn storefront_partition(scope: &TenantScope, storefront_id: &str) -> String {
    format!("{}#SF#{}", tenant_partition(scope), escape(storefront_id))
}

pub const LISTING_SK_PREFIX: &str = "PRODUCT#";

/// A product's listing on a storefront (the assignment with its overrides and the card the
/// public list shows), in the storefront's partition.
pub fn listing_key(scope: &TenantScope, storefront_id: &str, product_id: &str) -> Key {
    Key { pk: storefront_partition(scope, storefront_id), sk: format!("{LISTING_SK_PREFIX}{}", escape(product_id)) }
}

pub fn listings_partition(scope: &TenantScope, storefront_id: &str) -> String {
    storefront_partition(scope, storefront_id)
}

/// GSI1 partition of the listings a storefront shows publicly (sparse: a listing is in it
/// only while its product is active and has a visible variant), sorted by sort order.
pub fn public_listing_partition(scope: &TenantScope, storefront_id: &str) -> String {
    format!("{}#LISTED", storefront_partition(scope, storefront_id))
}

// ---------------------------------------------------------------- orders and gifts

pub const ORDER_SK: &str = "ORDER";
pub const RECIPIENTS_SK_PREFIX: &str = "RECIPIENTS#";
pub const UNIT_SK_PREFIX: &str = "UNIT#";

/// An order's partition: the order, its recipients (in chunks) and its units, so one Query
/// pages through an order's units.
pub fn order_partition(scope: &TenantScope, order_id: &str) -> String {
    format!("{}#ORDER#{}", tenant_partition(scope), escape(order_id))
}

pub fn order_key(scope: &TenantScope, order_id: &str) -> Key {
    Key { pk: order_partition(scope, order_id), sk: ORDER_SK.to_owned() }
}

/// Chunk `chunk` (0-based) of an order's recipients, as the buyer listed them.
pub fn recipients_key(scope: &TenantScope, order_id: &str, chunk: usize) -> Key {
    Key { pk: order_partition(scope, order_id), sk: format!("{RECIPIENTS_SK_PREFIX}{chunk:05}") }
}

/// The fulfillment unit of the order's recipient number `number` (1-based, in the buyer's
/// order): deterministic, so a repeated split writes the same keys.
pub fn unit_key(scope: &TenantScope, order_id: &str, number: u32) -> Key {
    Key { pk: order_partition(scope, order_id), sk: format!("{UNIT_SK_PREFIX}{number:05}") }
}

pub const REFUND_SK_PREFIX: &str = "REFUND#";

/// A refund of some of an order's units, in the order's partition.
pub fn refund_key(scope: &TenantScope, order_id: &str, refund_id: &str) -> Key {
    Key { pk: order_partition(scope, order_id), sk: format!("{REFUND_SK_PREFIX}{}", escape(refund_id)) }
}

/// GSI1 partition of the vendor's orders, oldest first by their time-ordered ids.
pub fn order_list_partition(scope: &TenantScope) -> String {
    format!("{}#ORDERS", tenant_partition(scope))
}

/// GSI1 partition of the vendor's units in one fulfillment status (the fulfillment queue).
pub fn unit_queue_partition(scope: &TenantScope, status: &str) -> String {
    format!("{}#UNITS#{}", tenant_partition(scope), escape(status))
}

/// Maps a Stripe PaymentIntent to its order (events name the intent, refunds and charges too).
pub fn payment_intent_key(scope: &TenantScope, payment_intent_id: &str) -> Key {
    Key { pk: format!("{}#PI#{}", tenant_partition(scope), escape(payment_intent_id)), sk: "PI".to_owned() }
}

/// A Stripe event already handled (or recorded as not applicable): deduplicates deliveries.
pub fn stripe_event_key(scope: &TenantScope, event_id: &str) -> Key {
    Key { pk: format!("{}#STRIPE_EVENT#{}", tenant_partition(scope), escape(event_id)), sk: "EVENT".to_owned() }
}

/// The global item of a redemption code: written with its unit on a condition that the code
/// is free, so no two units ever share one; read only by the gift resolver.
pub fn redemption_code_key(code: &str) -> Key {
    Key { pk: format!("{GLOBAL_PREFIX}CODE#{}", escape(code)), sk: "CODE".to_owned() }
}

// ---------------------------------------------------------------- ledger

/// The vendor's ledger: one partition, entries sorted by time (`E#<occurred at>#<kind>#<source>`),
/// so a period's statement is one Query.
pub fn ledger_partition(scope: &TenantScope) -> String {
    format!("{}#LEDGER", tenant_partition(scope))
}

pub const LEDGER_ENTRY_SK_PREFIX: &str = "E#";

/// An instant as the ledger's sort keys write it: UTC, fixed width to the nanosecond, so the
/// text sorts as the time does.
pub fn ledger_instant(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond()
    )
}

pub fn ledger_entry_key(scope: &TenantScope, occurred_at: time::OffsetDateTime, kind: &str, source_id: &str) -> Key {
    Key {
        pk: ledger_partition(scope),
        sk: format!("{LEDGER_ENTRY_SK_PREFIX}{}#{kind}#{}", ledger_instant(occurred_at), escape(source_id)),
    }
}

/// What makes an entry single: one per (kind, source), written with the entry.
pub fn ledger_source_key(scope: &TenantScope, kind: &str, source_id: &str) -> Key {
    Key {
        pk: format!("{}#LEDGER_SOURCE#{kind}#{}", tenant_partition(scope), escape(source_id)),
        sk: "SOURCE".to_owned(),
    }
}

// ---------------------------------------------------------------- billing

pub const STATEMENT_SK_PREFIX: &str = "STATEMENT#";

/// A closed cycle's statement record, in the vendor's main partition (cycle ids sort by time).
pub fn statement_key(scope: &TenantScope, cycle_id: &str) -> Key {
    tenant_key(scope, format!("{STATEMENT_SK_PREFIX}{}", escape(cycle_id)))
}

/// The platform's view of every vendor's statements, newest period last: written with each
/// statement record, read by the admin report.
pub fn statements_index_partition(_scope: &PlatformScope) -> String {
    format!("{PLATFORM_PREFIX}STATEMENTS")
}

pub fn statements_index_key(period_end: &str, vendor: &VendorId, cycle_id: &str) -> Key {
    Key {
        pk: format!("{PLATFORM_PREFIX}STATEMENTS"),
        sk: format!("{}#{}#{}", escape(period_end), vendor, escape(cycle_id)),
    }
}

/// The global item naming the statement a Xero invoice was made for: Xero's webhooks name
/// only the invoice.
pub fn xero_invoice_key(invoice_id: &str) -> Key {
    Key { pk: format!("{GLOBAL_PREFIX}XERO#INVOICE#{}", escape(invoice_id)), sk: "INVOICE".to_owned() }
}

/// The platform's Xero connection: tenant, where its tokens are, and the refresh lease.
pub fn xero_connection_key() -> Key {
    Key { pk: format!("{PLATFORM_PREFIX}XERO"), sk: "CONNECTION".to_owned() }
}

/// A pending Xero connect's single-use `state` nonce.
pub fn xero_connect_state_key(nonce: &str) -> Key {
    Key { pk: format!("{PLATFORM_PREFIX}XERO#STATE#{}", escape(nonce)), sk: "STATE".to_owned() }
}

/// The global item naming the vendor of a customer on the platform's own Stripe account:
/// Billing's webhooks name the customer.
pub fn billing_customer_key(customer_id: &str) -> Key {
    Key { pk: format!("{GLOBAL_PREFIX}STRIPE#CUSTOMER#{}", escape(customer_id)), sk: "CUSTOMER".to_owned() }
}

/// A Stripe Billing event's receipt (the platform account's webhook deduplicates by it).
pub fn billing_event_key(event_id: &str) -> Key {
    Key { pk: format!("{GLOBAL_PREFIX}STRIPE#BILLING_EVENT#{}", escape(event_id)), sk: "EVENT".to_owned() }
}

/// A vendor's usage of one calendar month (UTC), counted against its plan.
pub fn usage_key(scope: &TenantScope, month: &str) -> Key {
    Key { pk: format!("{}#USAGE#{}", tenant_partition(scope), escape(month)), sk: "USAGE".to_owned() }
}

// ---------------------------------------------------------------- Shopify

/// The global item naming the vendor a Shopify shop is connected to: webhooks name only the
/// shop, and this resolver item alone turns it into a tenant. One vendor per shop.
pub fn shopify_shop_key(shop: &str) -> Key {
    Key { pk: format!("{GLOBAL_PREFIX}SHOPIFY#SHOP#{}", escape(shop)), sk: "SHOP".to_owned() }
}

/// A pending install's single-use `state` nonce: global, since the OAuth redirect arrives
/// without a tenant; it names the vendor and shop the install was started for.
pub fn shopify_install_state_key(nonce: &str) -> Key {
    Key { pk: format!("{GLOBAL_PREFIX}SHOPIFY#STATE#{}", escape(nonce)), sk: "STATE".to_owned() }
}

/// A Shopify webhook delivery already accepted (`X-Shopify-Webhook-Id`): deduplicates retries.
pub fn shopify_webhook_key(scope: &TenantScope, webhook_id: &str) -> Key {
    Key { pk: format!("{}#SHOPIFY_WEBHOOK#{}", tenant_partition(scope), escape(webhook_id)), sk: "WEBHOOK".to_owned() }
}

/// Links a shop order Bestow created (by the shop's order number) to its unit: privacy
/// requests name shop orders.
pub fn shopify_order_key(scope: &TenantScope, order_number: &str) -> Key {
    Key { pk: format!("{}#SHOPIFY_ORDER#{}", tenant_partition(scope), escape(order_number)), sk: "ORDER".to_owned() }
}

/// A customer data export for a Shopify privacy request.
pub fn shopify_data_request_object(scope: &TenantScope, request_id: &str) -> String {
    format!("{}privacy/shopify/data-requests/{request_id}.json", vendor_object_prefix(scope))
}

// ---------------------------------------------------------------- S3 object keys

/// Every object of a vendor in a bucket lies under this prefix (IAM and lifecycle rules can
/// name it; a job refuses to read outside it).
pub fn vendor_object_prefix(scope: &TenantScope) -> String {
    format!("vendors/{}/", scope.vendor_id())
}

/// A gift's QR code image (`png` or `svg`).
pub fn gift_qr_object(scope: &TenantScope, unit_id: &str, extension: &str) -> String {
    format!("{}gifts/{unit_id}/qr.{extension}", vendor_object_prefix(scope))
}

// ---------------------------------------------------------------- jobs and audit

/// A job resource (`GET /vendors/{vendorId}/jobs/{jobId}`): status, progress, row errors.
pub fn job_record_key(scope: &TenantScope, job_id: &str) -> Key {
    Key { pk: format!("{}#JOB#{}", tenant_partition(scope), escape(job_id)), sk: "JOB".to_owned() }
}

/// A job's input (an import's CSV, a bulk update's request), beside its record: written with
/// the record, read by the job; too large for a queue message.
pub fn job_input_key(scope: &TenantScope, job_id: &str) -> Key {
    Key { pk: format!("{}#JOB#{}", tenant_partition(scope), escape(job_id)), sk: "INPUT".to_owned() }
}

/// The vendor's audit log: one partition, sorted by the entries' time-ordered ids.
pub fn audit_partition(scope: &TenantScope) -> String {
    format!("{}#AUDIT", tenant_partition(scope))
}

pub fn audit_key(scope: &TenantScope, entry_id: &str) -> Key {
    Key { pk: audit_partition(scope), sk: entry_id.to_owned() }
}

/// True when `pk` (or a GSI partition key) belongs to `vendor`: the whole-table audit in the
/// tests uses this to prove no tenant item escaped its prefix.
pub fn belongs_to_vendor(pk: &str, vendor: &str) -> bool {
    pk.strip_prefix(TENANT_PREFIX)
        .and_then(|rest| rest.strip_prefix(vendor))
        .is_some_and(|tail| tail.is_empty() || tail.starts_with('#'))
}

const VENDOR_DIRECTORY: &str = "P#VENDORS";
pub const VENDOR_DIRECTORY_SK_PREFIX: &str = "VENDOR#";

/// The platform's vendor directory, listed only by platform admins.
pub fn vendor_directory_partition(_scope: &PlatformScope) -> String {
    VENDOR_DIRECTORY.to_owned()
}

/// A vendor's own entry in the directory (kept in step with its profile in one
/// transaction). Built from the vendor's scope, so it can only ever name that vendor.
pub fn vendor_directory_entry(scope: &TenantScope) -> Key {
    Key { pk: VENDOR_DIRECTORY.to_owned(), sk: format!("{VENDOR_DIRECTORY_SK_PREFIX}{}", scope.vendor_id()) }
}

/// Sort keys of the vendor's configuration items.
pub mod sk {
    pub const PROFILE: &str = "PROFILE";
    pub const SHIPPING: &str = "CONFIG#SHIPPING";
    pub const SMTP: &str = "CONFIG#SMTP";
    pub const STRIPE: &str = "CONFIG#STRIPE";
    pub const STORAGE: &str = "CONFIG#STORAGE";
    pub const SHOPIFY: &str = "CONFIG#SHOPIFY";
    pub const PAYOUT_TERMS: &str = "CONFIG#PAYOUT_TERMS";
    pub const PLAN: &str = "CONFIG#PLAN";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_prefix_does_not_match_a_longer_vendor_id() {
        assert!(belongs_to_vendor("V#acme", "acme"));
        assert!(belongs_to_vendor("V#acme#ORDER#1", "acme"));
        assert!(!belongs_to_vendor("V#acme-2", "acme"));
        assert!(!belongs_to_vendor("G#acme", "acme"));
        assert!(VENDOR_DIRECTORY.starts_with(PLATFORM_PREFIX));
        assert_ne!(escape("a#b") + "#" + &escape("c"), escape("a") + "#" + &escape("b#c"));
    }
}
