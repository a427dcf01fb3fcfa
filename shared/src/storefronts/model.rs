//! Storefronts, listings and how a storefront shows a product: entities and rules, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::model::{MAX_TEXT, Product, ProductStatus, Variant, VariantStatus, adjust_price, check_price};
use crate::error::FieldError;
use crate::store::Versioned;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StorefrontStatus {
    Active,
    /// Not reachable publicly; nothing is deleted.
    Disabled,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Branding {
    /// `#rrggbb`.
    pub primary_color: Option<String>,
    pub accent_color: Option<String>,
    /// `https://…`
    pub logo_url: Option<String>,
    pub tagline: Option<String>,
}

/// A storefront, stored in the vendor's partition at `STOREFRONT#<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storefront {
    pub id: String,
    pub name: String,
    /// Unique platform-wide: the public path `/storefronts/{slug}`.
    pub slug: String,
    /// Unique platform-wide when set: the storefront's own domain.
    pub host: Option<String>,
    pub branding: Branding,
    /// ISO 4217: only products in this currency can be listed.
    pub currency: String,
    pub status: StorefrontStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// The global lookup item (`G#STOREFRONT#SLUG#…` / `…#HOST#…`): which vendor a storefront
/// belongs to, plus its public face, so resolving a storefront is one read. The vendor is
/// `owner_vendor`, not `vendor_id`: a global item is no tenant item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorefrontLookup {
    pub owner_vendor: String,
    pub storefront_id: String,
    pub name: String,
    pub slug: String,
    pub currency: String,
    pub branding: Branding,
    pub status: StorefrontStatus,
}

impl StorefrontLookup {
    pub fn of(vendor: &str, s: &Storefront) -> Self {
        Self {
            owner_vendor: vendor.to_owned(),
            storefront_id: s.id.clone(),
            name: s.name.clone(),
            slug: s.slug.clone(),
            currency: s.currency.clone(),
            branding: s.branding.clone(),
            status: s.status,
        }
    }
}

/// How a storefront shows one product.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ListingOverride {
    /// Replaces the product's title on this storefront.
    pub title: Option<String>,
    /// Applied to every variant's price (e.g. `-10` for 10 % off, `25` for 25 % more),
    /// rounded half up to the minor unit; -100..=1000.
    pub price_adjustment_percent: Option<i32>,
    /// Variant id → price in minor units: wins over the percentage.
    pub variant_prices: BTreeMap<String, i64>,
    /// The variants shown; all active variants when absent.
    pub visible_variants: Option<BTreeSet<String>>,
    /// Ascending; ties by product id.
    pub sort_order: u32,
    /// RFC 3339; listed from then on.
    pub available_from: Option<String>,
    /// RFC 3339; listed until then.
    pub available_until: Option<String>,
}

/// What the public list shows of a listed product, derived from the product, its variants
/// and the override.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListingCard {
    pub handle: String,
    /// The override's title, else the product's.
    pub title: String,
    pub description: String,
    pub product_status: Option<ProductStatus>,
    pub currency: String,
    pub tags: Vec<String>,
    /// Lowest and highest price of the visible variants, after the override.
    pub price_min_minor: Option<i64>,
    pub price_max_minor: Option<i64>,
    /// Some visible variant can be sold now.
    pub in_stock: bool,
    pub visible_variants: u32,
}

/// A product on a storefront, stored in the storefront's partition at `PRODUCT#<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub storefront_id: String,
    pub product_id: String,
    #[serde(rename = "override")]
    pub overrides: ListingOverride,
    pub card: ListingCard,
    /// The window as epoch seconds, for the public Query's filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_from_epoch_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_until_epoch_s: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

impl Listing {
    /// In the public index: the product is active and shows at least one variant. (The
    /// availability window is checked at read time.)
    pub fn is_listed(&self) -> bool {
        self.card.product_status == Some(ProductStatus::Active) && self.card.visible_variants > 0
    }

    pub fn is_available_at(&self, now_epoch_s: i64) -> bool {
        self.available_from_epoch_s.is_none_or(|from| from <= now_epoch_s)
            && self.available_until_epoch_s.is_none_or(|until| now_epoch_s < until)
    }
}

/// A variant's price on the storefront.
pub fn storefront_price(variant: &Variant, o: &ListingOverride) -> i64 {
    if let Some(price) = o.variant_prices.get(&variant.id) {
        return *price;
    }
    match o.price_adjustment_percent {
        Some(pct) => adjust_price(variant.price_minor, pct),
        None => variant.price_minor,
    }
}

pub fn is_visible(variant: &Variant, o: &ListingOverride) -> bool {
    variant.status == VariantStatus::Active && o.visible_variants.as_ref().is_none_or(|ids| ids.contains(&variant.id))
}

/// The card for a product as the override shows it.
pub fn build_card(product: &Product, variants: &[Versioned<Variant>], o: &ListingOverride) -> ListingCard {
    let visible: Vec<&Variant> = variants.iter().map(|v| &v.value).filter(|v| is_visible(v, o)).collect();
    let prices = visible.iter().map(|v| storefront_price(v, o));
    let mut card = ListingCard {
        price_min_minor: prices.clone().min(),
        price_max_minor: prices.max(),
        in_stock: visible.iter().any(|v| v.in_stock()),
        visible_variants: visible.len() as u32,
        ..ListingCard::default()
    };
    card.set_product_part(product, o);
    card
}

impl ListingCard {
    /// The part of the card that comes from the product's own fields (the rest comes from
    /// its variants).
    pub fn set_product_part(&mut self, product: &Product, o: &ListingOverride) {
        self.handle = product.handle.clone();
        self.title = o.title.clone().unwrap_or_else(|| product.title.clone());
        self.description = product.description.clone();
        self.product_status = Some(product.status);
        self.currency = product.currency.clone();
        self.tags = product.tags.clone();
    }
}

/// Parses an RFC 3339 time to epoch seconds.
pub fn epoch_seconds(value: &str) -> Option<i64> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok().map(|t| t.unix_timestamp())
}

// ---------------------------------------------------------------- validation

fn check_name(value: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() || value.chars().count() > MAX_TEXT {
        errors.push(FieldError::new(pointer, format!("must be 1-{MAX_TEXT} characters")));
    }
}

/// A slug is the public path segment: 3–63 of `[a-z0-9-]`, not starting or ending with `-`.
pub fn check_slug(slug: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    let valid = (3..=63).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if !valid {
        errors.push(FieldError::new(
            pointer,
            "must be 3-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ));
    }
}

/// A host is a lowercase DNS name with at least two labels.
pub fn check_host(host: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    let labels: Vec<&str> = host.split('.').collect();
    let valid = host.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !valid {
        errors.push(FieldError::new(pointer, "must be a lowercase host name such as gifts.example.com"));
    }
}

pub fn check_branding(b: &Branding, errors: &mut Vec<FieldError>) {
    for (value, pointer) in [(&b.primary_color, "/branding/primary_color"), (&b.accent_color, "/branding/accent_color")]
    {
        if let Some(color) = value {
            let valid = color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|c| c.is_ascii_hexdigit());
            if !valid {
                errors.push(FieldError::new(pointer, "must be a colour #rrggbb"));
            }
        }
    }
    if let Some(url) = &b.logo_url
        && (!url.starts_with("https://") || url.len() > 2048 || url.chars().any(char::is_whitespace))
    {
        errors.push(FieldError::new("/branding/logo_url", "must be an https:// URL"));
    }
    if let Some(tagline) = &b.tagline
        && tagline.chars().count() > MAX_TEXT
    {
        errors.push(FieldError::new("/branding/tagline", format!("must be at most {MAX_TEXT} characters")));
    }
}

pub fn check_storefront(s: &Storefront, errors: &mut Vec<FieldError>) {
    check_name(&s.name, "/name", errors);
    check_slug(&s.slug, "/slug", errors);
    if let Some(host) = &s.host {
        check_host(host, "/host", errors);
    }
    check_branding(&s.branding, errors);
    if !crate::vendors::model::is_currency(&s.currency) {
        errors.push(FieldError::new("/currency", format!("{} is not a supported ISO 4217 currency", s.currency)));
    }
}

/// Checks an override against the product's variants.
pub fn check_override(o: &ListingOverride, variants: &[Versioned<Variant>], errors: &mut Vec<FieldError>) {
    if let Some(title) = &o.title {
        check_name(title, "/title", errors);
    }
    if let Some(pct) = o.price_adjustment_percent
        && !(-100..=1000).contains(&pct)
    {
        errors.push(FieldError::new("/price_adjustment_percent", "must be -100..=1000"));
    }
    let active = |id: &str| variants.iter().any(|v| v.value.id == id && v.value.status == VariantStatus::Active);
    for (id, price) in &o.variant_prices {
        let at = format!("/variant_prices/{id}");
        if !active(id) {
            errors.push(FieldError::new(&at, "the product has no active variant with this id"));
        }
        check_price(*price, &at, errors);
    }
    for id in o.visible_variants.iter().flatten() {
        if !active(id) {
            errors.push(FieldError::new(
                format!("/visible_variants/{id}"),
                "the product has no active variant with this id",
            ));
        }
    }
    let from = o.available_from.as_deref().map(|t| (t, epoch_seconds(t)));
    let until = o.available_until.as_deref().map(|t| (t, epoch_seconds(t)));
    for (value, pointer) in [(from, "/available_from"), (until, "/available_until")] {
        if let Some((_, None)) = value {
            errors.push(FieldError::new(pointer, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z"));
        }
    }
    if let (Some((_, Some(from))), Some((_, Some(until)))) = (from, until)
        && from >= until
    {
        errors.push(FieldError::new("/available_until", "must be after available_from"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{InventoryPolicy, test_product};

    fn variant(id: &str, price: i64, stock: i64) -> Versioned<Variant> {
        let product = test_product(vec![], price);
        let mut v = Variant::new(&product, id.into(), BTreeMap::new(), "");
        v.stock_quantity = stock;
        Versioned { value: v, version: 1 }
    }

    #[test]
    fn prices_resolve_per_variant_then_percentage_rounded_half_up() {
        let v = variant("a", 1999, 0).value;
        let mut o = ListingOverride { price_adjustment_percent: Some(-10), ..Default::default() };
        assert_eq!(storefront_price(&v, &o), 1799, "1799.1 rounds to 1799");
        o.price_adjustment_percent = Some(-50);
        assert_eq!(storefront_price(&v, &o), 1000, "999.5 rounds up");
        o.variant_prices.insert("a".into(), 500);
        assert_eq!(storefront_price(&v, &o), 500);
        o.price_adjustment_percent = Some(-100);
        assert_eq!(storefront_price(&variant("b", 1999, 0).value, &o), 0);
    }

    #[test]
    fn cards_show_only_visible_variants() {
        let mut product = test_product(vec![], 0);
        product.handle = "h".into();
        product.title = "Base".into();
        let mut backorder = variant("c", 300, 0);
        backorder.value.inventory_policy = InventoryPolicy::Continue;
        let variants = vec![variant("a", 100, 0), variant("b", 200, 5), backorder];
        let o = ListingOverride {
            title: Some("Shown".into()),
            visible_variants: Some(["a".to_owned(), "c".to_owned()].into()),
            ..Default::default()
        };
        let card = build_card(&product, &variants, &o);
        assert_eq!((card.title.as_str(), card.price_min_minor, card.price_max_minor), ("Shown", Some(100), Some(300)));
        assert!(card.in_stock, "c sells on backorder");
        assert_eq!(card.visible_variants, 2);
        let mut errors = vec![];
        let bad = ListingOverride {
            visible_variants: Some(["zz".to_owned()].into()),
            available_from: Some("soon".into()),
            ..Default::default()
        };
        check_override(&bad, &variants, &mut errors);
        assert_eq!(errors.len(), 2);
    }
}
