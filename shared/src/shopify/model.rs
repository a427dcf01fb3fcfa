//! A vendor's Shopify connection and the mapping of Shopify's catalogue onto Bestow's: pure,
//! no I/O.
//!
//! Mirrored entities get ids derived from Shopify's (`shopify-<number>`), so a re-sync finds
//! what it wrote before by key, never by search, and can never create a second copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::catalog::model::{
    ExternalProduct, ExternalVariant, InventoryPolicy, MAX_DESCRIPTION, MAX_PRICE_MINOR, MAX_TAGS, MAX_TEXT,
    OptionValue, Product, ProductOption, ProductStatus, Variant, VariantDefaults, VariantStatus, check_handle,
    check_sku, handle_from_title,
};
use crate::integrations::secrets::SecretRef;
use crate::integrations::shopify::ShopDomain;
use crate::integrations::shopify::operations as shopify;

pub const SOURCE: &str = "shopify";
/// Bumped when the mapping changes, so the next sync rewrites what the old mapping wrote.
const MAPPING_VERSION: &str = "1";
/// Sync errors a connection remembers for the vendor's view.
pub const MAX_RECENT_ERRORS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// No shop was ever connected (or its data was erased on Shopify's shop/redact).
    NotConnected,
    Connected,
    /// The app was uninstalled from the shop: the token is gone and nothing syncs; the
    /// mirrored catalogue stays.
    Uninstalled,
}

/// The state of the catalogue sync, for the vendor's view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncState {
    pub last_job_id: Option<String>,
    pub last_started_at: Option<String>,
    pub last_finished_at: Option<String>,
    /// `running`, `completed`, `completed_with_errors` or `failed`.
    pub last_status: Option<String>,
    /// Products and variants the shop had at the last full sync.
    pub products: u64,
    pub variants: u64,
    /// Of those, written by the last full sync (0 when nothing changed upstream).
    pub products_written: u64,
    pub variants_written: u64,
    /// Mirrored products archived because the shop no longer has them.
    pub products_archived: u64,
    /// When the last webhook changed the catalogue or stock.
    pub last_webhook_at: Option<String>,
    /// Newest last.
    pub recent_errors: Vec<SyncError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SyncError {
    pub at: String,
    pub message: String,
}

impl SyncState {
    pub fn record_error(&mut self, at: &str, message: impl Into<String>) {
        self.recent_errors.push(SyncError { at: at.to_owned(), message: message.into() });
        let excess = self.recent_errors.len().saturating_sub(MAX_RECENT_ERRORS);
        self.recent_errors.drain(..excess);
    }
}

/// A vendor's Shopify connection (`CONFIG#SHOPIFY`); the token is the vendor's `shopify` secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopifyConnection {
    pub shop: ShopDomain,
    pub status: ConnectionStatus,
    pub scope: String,
    /// The token's version in Secrets Manager; `None` once uninstalled.
    pub secrets: Option<SecretRef>,
    /// Topics subscribed at install.
    pub webhook_topics: Vec<String>,
    pub installed_at: String,
    pub uninstalled_at: Option<String>,
    pub sync: SyncState,
    pub updated_at: String,
}

/// A pending install: which vendor asked to connect which shop, until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallState {
    pub owner_vendor: String,
    pub shop: ShopDomain,
    pub requested_by: String,
    /// Epoch seconds (also the item's TTL).
    pub expires_at: i64,
}

/// How long the vendor has to approve the install on Shopify.
pub const INSTALL_STATE_SECONDS: i64 = 15 * 60;
/// How old the redirect's own `timestamp` may be.
pub const REDIRECT_MAX_AGE_SECONDS: i64 = 15 * 60;

/// The global lookup of a connected shop.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopLookup {
    pub shop: ShopDomain,
    pub owner_vendor: String,
}

/// The webhook topics an install subscribes (GraphQL enum form). The privacy topics are
/// declared in the app's configuration instead, as Shopify requires.
pub const WEBHOOK_TOPICS: &[&str] = &[
    "PRODUCTS_CREATE",
    "PRODUCTS_UPDATE",
    "PRODUCTS_DELETE",
    "INVENTORY_LEVELS_UPDATE",
    "ORDERS_FULFILLED",
    "ORDERS_CANCELLED",
    "APP_UNINSTALLED",
];

/// The number at the end of a GID (`gid://shopify/Product/123` → `123`), or the text itself.
pub fn gid_number(gid: &str) -> &str {
    let tail = gid.rsplit('/').next().unwrap_or(gid);
    tail.split('?').next().unwrap_or(tail)
}

/// Ids of mirrored entities start with it (native ids are ULIDs, which never do).
pub const MIRRORED_PREFIX: &str = "shopify-";

pub fn mirrored_id(gid: &str) -> String {
    format!("{MIRRORED_PREFIX}{}", gid_number(gid))
}

pub fn product_gid(number: &str) -> String {
    format!("gid://shopify/Product/{number}")
}

pub fn inventory_item_gid(number: &str) -> String {
    format!("gid://shopify/InventoryItem/{number}")
}

/// The tag Bestow puts on the shop order it creates for a unit.
pub fn unit_tag(unit_id: &str) -> String {
    format!("bestow-unit-{unit_id}")
}

/// The unit a shop order's tags name (`tags` as webhooks send them: `"a, b"`).
pub fn unit_of_tags(tags: &str) -> Option<&str> {
    tags.split(',').map(str::trim).find_map(|t| t.strip_prefix("bestow-unit-"))
}

/// Decimal digits of a currency's minor unit (ISO 4217), for the currencies Bestow takes.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" => 0,
        _ => 2,
    }
}

/// `"12.5"` → 1250 (2 digits). Refuses negatives, more digits than the currency has, and
/// amounts past Bestow's maximum.
pub fn decimal_to_minor(text: &str, digits: u32) -> Option<i64> {
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let fraction = fraction.trim_end_matches('0');
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > digits as usize {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{fraction:0<width$}", width = digits as usize);
    let minor = whole.parse::<i64>().ok()?.checked_mul(10_i64.pow(digits))?.checked_add(if padded.is_empty() {
        0
    } else {
        padded.parse::<i64>().ok()?
    })?;
    (minor <= MAX_PRICE_MINOR).then_some(minor)
}

fn grams(weight: Option<&shopify::Weight>) -> Option<u32> {
    let w = weight?;
    let factor = match w.unit.as_str() {
        "GRAMS" => 1.0,
        "KILOGRAMS" => 1000.0,
        "OUNCES" => 28.349_523_125,
        "POUNDS" => 453.592_37,
        _ => return None,
    };
    let grams = (w.value * factor).round();
    (grams.is_finite() && grams >= 0.0 && grams <= f64::from(u32::MAX)).then_some(grams as u32)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.trim().chars().take(max_chars).collect()
}

/// A digest of everything Bestow maps from a product (the product with all its variants as
/// the shop answered): equal digests mean the mirror is already up to date.
pub fn digest(product: &shopify::Product, currency: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(MAPPING_VERSION.as_bytes());
    hasher.update(currency.as_bytes());
    // Serialising a typed value is deterministic (field order is the struct's).
    hasher.update(serde_json::to_vec(product).unwrap_or_default());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Shopify's product without options has one option "Title" with one value "Default Title";
/// Bestow shows no options for it.
fn is_default_title(options: &[shopify::ProductOption]) -> bool {
    options.len() == 1
        && options[0].name == "Title"
        && options[0].option_values.len() <= 1
        && options[0].option_values.iter().all(|v| v.name == "Default Title")
}

/// A product as the mirror holds it, with its variants.
pub struct Mapped {
    pub product: Product,
    pub variants: Vec<Variant>,
}

/// Maps a shop's product onto Bestow's, keeping what only Bestow has (listings, images, the
/// creation time, archived variants) from `existing`. `handle` is the handle to use (the
/// caller settles collisions). Timestamps are left as in `existing` (or `now` for new
/// entities), so a mapping equal to what is stored compares equal.
pub fn map_product(
    src: &shopify::Product,
    currency: &str,
    handle: &str,
    existing: Option<&Product>,
    existing_variants: &[Variant],
    now: &str,
) -> Result<Mapped, String> {
    let digits = minor_digits(currency);
    let id = mirrored_id(&src.id);
    let default_title = is_default_title(&src.options);
    let mut options_src = src.options.clone();
    options_src.sort_by_key(|o| o.position);
    let options: Vec<ProductOption> = if default_title {
        Vec::new()
    } else {
        options_src
            .iter()
            .take(crate::catalog::model::MAX_OPTIONS)
            .map(|o| ProductOption {
                id: mirrored_id(&o.id),
                name: truncate(&o.name, MAX_TEXT),
                values: o
                    .option_values
                    .iter()
                    .map(|v| OptionValue { id: mirrored_id(&v.id), value: truncate(&v.name, MAX_TEXT) })
                    .collect(),
                retired_values: Vec::new(),
            })
            .collect()
    };
    let mut variants = Vec::with_capacity(src.variants.nodes.len());
    for v in &src.variants.nodes {
        let price_minor = decimal_to_minor(&v.price, digits)
            .ok_or_else(|| format!("variant {} has a price Bestow cannot hold: {}", gid_number(&v.id), v.price))?;
        let compare_at_price_minor = v.compare_at_price.as_deref().and_then(|p| decimal_to_minor(p, digits));
        let mut option_values = BTreeMap::new();
        if !default_title {
            for selected in &v.selected_options {
                let Some(option) = options.iter().zip(&options_src).find(|(_, o)| o.name == selected.name) else {
                    continue;
                };
                let value_id = selected.option_value.as_ref().map(|n| mirrored_id(&n.id)).or_else(|| {
                    option.0.values.iter().find(|val| val.value == selected.value).map(|val| val.id.clone())
                });
                if let Some(value_id) = value_id {
                    option_values.insert(option.0.id.clone(), value_id);
                }
            }
        }
        let tracked = v.inventory_item.tracked;
        let variant_id = mirrored_id(&v.id);
        let before = existing_variants.iter().find(|e| e.id == variant_id);
        let sku = v.sku.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).filter(|s| {
            let mut errors = Vec::new();
            check_sku(s, "", &mut errors);
            errors.is_empty()
        });
        let barcode = v
            .barcode
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty() && b.len() <= 64 && b.bytes().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned);
        variants.push(Variant {
            id: variant_id,
            product_id: id.clone(),
            option_values,
            sku,
            barcode,
            price_minor,
            compare_at_price_minor,
            currency: currency.to_owned(),
            weight_grams: grams(v.inventory_item.measurement.as_ref().and_then(|m| m.weight.as_ref())),
            stock_quantity: if tracked {
                v.inventory_quantity.unwrap_or(0).clamp(-1_000_000_000, 1_000_000_000)
            } else {
                0
            },
            inventory_policy: if !tracked || v.inventory_policy == "CONTINUE" {
                InventoryPolicy::Continue
            } else {
                InventoryPolicy::Deny
            },
            attributes: before.map(|b| b.attributes.clone()).unwrap_or_default(),
            status: VariantStatus::Active,
            bulk_jobs: Vec::new(),
            external: Some(ExternalVariant { id: v.id.clone(), inventory_item_id: v.inventory_item.id.clone() }),
            created_at: before.map_or_else(|| now.to_owned(), |b| b.created_at.clone()),
            updated_at: before.map_or_else(|| now.to_owned(), |b| b.updated_at.clone()),
        });
    }
    // Variants the shop no longer has stay, archived: orders may name them.
    for old in existing_variants {
        if !variants.iter().any(|v| v.id == old.id) {
            let mut archived = old.clone();
            archived.status = VariantStatus::Archived;
            variants.push(archived);
        }
    }
    let defaults = VariantDefaults {
        price_minor: variants.first().map_or(0, |v| v.price_minor),
        compare_at_price_minor: variants.first().and_then(|v| v.compare_at_price_minor),
        weight_grams: variants.first().and_then(|v| v.weight_grams),
        inventory_policy: variants.first().map_or(InventoryPolicy::Deny, |v| v.inventory_policy),
    };
    let mut tags: Vec<String> =
        src.tags.iter().map(|t| truncate(t, MAX_TEXT)).filter(|t| !t.is_empty()).take(MAX_TAGS).collect();
    tags.dedup();
    let title = Some(truncate(&src.title, MAX_TEXT)).filter(|t| !t.is_empty()).unwrap_or_else(|| id.clone());
    let product = Product {
        id: id.clone(),
        handle: handle.to_owned(),
        title,
        description: src.description_html.chars().take(MAX_DESCRIPTION).collect(),
        status: match src.status.as_str() {
            "ACTIVE" => ProductStatus::Active,
            "ARCHIVED" => ProductStatus::Archived,
            _ => ProductStatus::Draft,
        },
        tags,
        attributes: existing.map(|e| e.attributes.clone()).unwrap_or_default(),
        options,
        currency: currency.to_owned(),
        variant_defaults: defaults,
        variant_count: src.variants.nodes.len() as u32,
        options_revision: existing.map_or(1, |e| e.options_revision),
        generation: None,
        images: existing.map(|e| e.images.clone()).unwrap_or_default(),
        storefronts: existing.map(|e| e.storefronts.clone()).unwrap_or_default(),
        external: Some(ExternalProduct {
            source: SOURCE.to_owned(),
            id: src.id.clone(),
            updated_at: src.updated_at.clone(),
            digest: digest(src, currency),
        }),
        created_at: existing.map_or_else(|| now.to_owned(), |e| e.created_at.clone()),
        updated_at: existing.map_or_else(|| now.to_owned(), |e| e.updated_at.clone()),
    };
    Ok(Mapped { product, variants })
}

/// The handle a mirrored product asks for: Shopify's own when Bestow accepts it.
pub fn wanted_handle(src: &shopify::Product) -> String {
    let mut errors = Vec::new();
    check_handle(&src.handle, "", &mut errors);
    if errors.is_empty() {
        return src.handle.clone();
    }
    Some(handle_from_title(&src.title)).filter(|h| !h.is_empty()).unwrap_or_else(|| mirrored_id(&src.id))
}

/// The handle used when the wanted one belongs to a product of the vendor's own.
pub fn fallback_handle(src: &shopify::Product) -> String {
    let base: String = wanted_handle(src).chars().take(MAX_TEXT - 30).collect();
    format!("{}-shopify-{}", base.trim_end_matches('-'), gid_number(&src.id))
}

/// Is `incoming` (an upstream `updated_at`) older than what the mirror holds?
pub fn is_older(incoming: &str, held: &str) -> bool {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    match (OffsetDateTime::parse(incoming, &Rfc3339), OffsetDateTime::parse(held, &Rfc3339)) {
        (Ok(incoming), Ok(held)) => incoming < held,
        // Unparseable times cannot be ordered: let the newer read win.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_minor_units_exactly() {
        assert_eq!(decimal_to_minor("12.50", 2), Some(1250));
        assert_eq!(decimal_to_minor("12.5", 2), Some(1250));
        assert_eq!(decimal_to_minor("12", 2), Some(1200));
        assert_eq!(decimal_to_minor("0.07", 2), Some(7));
        assert_eq!(decimal_to_minor("1500", 0), Some(1500));
        assert_eq!(decimal_to_minor("1500.00", 0), Some(1500));
        assert_eq!(decimal_to_minor("12.345", 2), None);
        assert_eq!(decimal_to_minor("-1.00", 2), None);
        assert_eq!(decimal_to_minor("1e3", 2), None);
        assert_eq!(decimal_to_minor("99999999999999999999", 2), None);
    }

    #[test]
    fn gids_and_tags() {
        assert_eq!(gid_number("gid://shopify/Product/123"), "123");
        assert_eq!(gid_number("gid://shopify/InventoryLevel/9?inventory_item_id=5"), "9");
        assert_eq!(mirrored_id("gid://shopify/ProductVariant/77"), "shopify-77");
        assert_eq!(unit_of_tags("vip, bestow-unit-01abc-00003,x"), Some("01abc-00003"));
        assert_eq!(unit_of_tags("vip"), None);
    }

    #[test]
    fn times_order_across_offsets() {
        assert!(is_older("2026-11-26T10:00:00-05:00", "2026-11-26T16:00:00Z"));
        assert!(!is_older("2026-11-26T10:00:01-05:00", "2026-11-26T15:00:00Z"));
        assert!(!is_older("garbage", "2026-11-26T15:00:00Z"));
    }
}
