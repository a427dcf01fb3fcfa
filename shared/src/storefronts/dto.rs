//! API shapes of storefronts, listings and the public catalogue.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{Branding, Listing, ListingCard, ListingOverride, Storefront, StorefrontStatus};
use crate::catalog::model::Attributes;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStorefrontRequest {
    pub name: String,
    /// Unique platform-wide: the public path is `/storefronts/{slug}`.
    pub slug: String,
    /// The storefront's own domain (unique platform-wide); the public path also takes it
    /// in place of the slug.
    pub host: Option<String>,
    #[serde(default)]
    pub branding: Branding,
    /// ISO 4217; the vendor's currency when absent. Fixed once created.
    pub currency: Option<String>,
    /// `active` when absent.
    pub status: Option<StorefrontStatus>,
}

/// Every field optional: only those sent change; `host: null` removes the host.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStorefrontRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<String>)]
    pub host: Option<Option<String>>,
    pub branding: Option<Branding>,
    pub status: Option<StorefrontStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontResponse {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub host: Option<String>,
    pub branding: Branding,
    pub currency: String,
    pub status: StorefrontStatus,
    /// The public catalogue of this storefront.
    pub public_path: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Storefront> for StorefrontResponse {
    fn from(s: Storefront) -> Self {
        Self {
            public_path: format!("/storefronts/{}/products", s.slug),
            id: s.id,
            name: s.name,
            slug: s.slug,
            host: s.host,
            branding: s.branding,
            currency: s.currency,
            status: s.status,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontList {
    pub items: Vec<StorefrontResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingResponse {
    pub storefront_id: String,
    pub product_id: String,
    #[serde(rename = "override")]
    pub overrides: ListingOverride,
    /// What the public list shows (derived; rebuilt after every change of the product).
    pub card: ListingCard,
    /// In the public list now: the product is active and shows a variant (the availability
    /// window is applied at read time).
    pub listed: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Listing> for ListingResponse {
    fn from(l: Listing) -> Self {
        Self {
            listed: l.is_listed(),
            storefront_id: l.storefront_id,
            product_id: l.product_id,
            overrides: l.overrides,
            card: l.card,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingList {
    pub items: Vec<ListingResponse>,
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- public

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicStorefront {
    pub name: String,
    pub slug: String,
    pub currency: String,
    pub branding: Branding,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProductCard {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub currency: String,
    pub price_min_minor: Option<i64>,
    pub price_max_minor: Option<i64>,
    pub in_stock: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProductList {
    pub storefront: PublicStorefront,
    /// In the storefront's sort order.
    pub items: Vec<PublicProductCard>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    InStock,
    /// Out of stock but sold anyway (inventory policy `continue`).
    Backorder,
    OutOfStock,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicOption {
    pub name: String,
    /// Only values some visible variant has, in display order.
    pub values: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicOptionValue {
    pub option: String,
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicVariant {
    pub id: String,
    pub title: String,
    pub options: Vec<PublicOptionValue>,
    pub price_minor: i64,
    /// The variant's compare-at price, or its base price when the storefront sells it lower.
    pub compare_at_price_minor: Option<i64>,
    pub stock_state: StockState,
    pub in_stock: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicImage {
    /// `<asset base URL>/<key>`; absent where no asset base URL is configured.
    pub url: Option<String>,
    pub alt: Option<String>,
    /// The visible variants it shows; the whole product when empty.
    pub variant_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProduct {
    pub storefront: PublicStorefront,
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub attributes: Attributes,
    pub currency: String,
    pub options: Vec<PublicOption>,
    /// Ready images only, in display order.
    pub images: Vec<PublicImage>,
    pub variants: Vec<PublicVariant>,
    pub price_min_minor: Option<i64>,
    pub price_max_minor: Option<i64>,
    pub in_stock: bool,
}
