//! API shapes of the catalogue. Requests refuse unknown fields; prices are integer minor
//! units of the product's currency.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{
    Attributes, InventoryPolicy, OptionInput, Product, ProductOption, ProductStatus, Variant, VariantDefaults,
    VariantStatus, variant_labels,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    pub title: String,
    /// URL slug, unique per vendor; derived from the title when absent.
    pub handle: Option<String>,
    pub description: Option<String>,
    /// `draft` when absent.
    pub status: Option<ProductStatus>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub attributes: Attributes,
    /// ISO 4217; the vendor's currency when absent. Fixed once the product exists.
    pub currency: Option<String>,
    /// Up to 3 options; their values' cartesian product makes the variants (no ids here).
    #[serde(default)]
    pub options: Vec<OptionInput>,
    /// What generated variants start with.
    #[serde(default)]
    pub variant_defaults: VariantDefaults,
}

/// Every field optional: only those sent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    pub title: Option<String>,
    pub handle: Option<String>,
    pub description: Option<String>,
    pub status: Option<ProductStatus>,
    pub tags: Option<Vec<String>>,
    /// Replaces the whole attribute map.
    pub attributes: Option<Attributes>,
    pub variant_defaults: Option<VariantDefaults>,
}

/// The full option set, in display order. An option or value with an `id` is an existing one
/// (renamed or moved: its variants keep their data); one without is new; an existing one left
/// out is removed (its variants are archived).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutOptionsRequest {
    pub options: Vec<OptionInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GenerationInProgress {
    /// Poll `GET /vendors/{vendorId}/jobs/{job_id}`.
    pub job_id: String,
    pub href: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResponse {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: String,
    pub status: ProductStatus,
    pub tags: Vec<String>,
    pub attributes: Attributes,
    pub options: Vec<ProductOption>,
    pub currency: String,
    pub variant_defaults: VariantDefaults,
    pub images: Vec<super::model::ProductImage>,
    /// Active variants (as of the last finished generation).
    pub variant_count: u32,
    /// Present while a variant generation job runs; variant writes wait for it (409).
    pub variant_generation: Option<GenerationInProgress>,
    /// Where a mirrored product comes from (Shopify): it is changed there, not here.
    pub external: Option<super::model::ExternalProduct>,
    pub created_at: String,
    pub updated_at: String,
}

impl ProductResponse {
    pub fn new(p: Product, vendor: &str) -> Self {
        Self {
            variant_generation: p.generation.map(|g| GenerationInProgress {
                href: format!("/vendors/{vendor}/jobs/{}", g.job_id),
                job_id: g.job_id,
            }),
            external: p.external,
            id: p.id,
            handle: p.handle,
            title: p.title,
            description: p.description,
            status: p.status,
            tags: p.tags,
            attributes: p.attributes,
            options: p.options,
            currency: p.currency,
            variant_defaults: p.variant_defaults,
            images: p.images,
            variant_count: p.variant_count,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub items: Vec<ProductResponse>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantOptionValue {
    pub option_id: String,
    pub option: String,
    pub value_id: String,
    pub value: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantResponse {
    pub id: String,
    pub product_id: String,
    /// The option values joined, e.g. `S / Red`; `Default` for a product without options.
    pub title: String,
    /// In the product's option order.
    pub options: Vec<VariantOptionValue>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub price_minor: i64,
    pub compare_at_price_minor: Option<i64>,
    pub currency: String,
    pub weight_grams: Option<u32>,
    pub stock_quantity: i64,
    pub inventory_policy: InventoryPolicy,
    /// Sellable now: stock above 0, or backorders allowed.
    pub in_stock: bool,
    pub attributes: Attributes,
    pub status: VariantStatus,
    pub created_at: String,
    pub updated_at: String,
}

impl VariantResponse {
    pub fn new(options: &[ProductOption], v: Variant) -> Self {
        let labels = variant_labels(options, &v);
        let title = if labels.is_empty() {
            "Default".to_owned()
        } else {
            labels.iter().map(|(_, value)| *value).collect::<Vec<_>>().join(" / ")
        };
        let option_values = options
            .iter()
            .filter_map(|o| {
                let value_id = v.option_values.get(&o.id)?;
                let value = o.value_text(value_id).unwrap_or(value_id).to_owned();
                Some(VariantOptionValue {
                    option_id: o.id.clone(),
                    option: o.name.clone(),
                    value_id: value_id.clone(),
                    value,
                })
            })
            .collect();
        Self {
            in_stock: v.in_stock(),
            id: v.id,
            product_id: v.product_id,
            title,
            options: option_values,
            sku: v.sku,
            barcode: v.barcode,
            price_minor: v.price_minor,
            compare_at_price_minor: v.compare_at_price_minor,
            currency: v.currency,
            weight_grams: v.weight_grams,
            stock_quantity: v.stock_quantity,
            inventory_policy: v.inventory_policy,
            attributes: v.attributes,
            status: v.status,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantList {
    pub items: Vec<VariantResponse>,
    pub next_cursor: Option<String>,
}

/// Every field optional: only those sent change; `null` clears a clearable field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVariantRequest {
    /// Unique per vendor across all products; `null` clears it.
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<String>)]
    pub sku: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<String>)]
    pub barcode: Option<Option<String>>,
    pub price_minor: Option<i64>,
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<i64>)]
    pub compare_at_price_minor: Option<Option<i64>>,
    #[serde(default, deserialize_with = "crate::http::nullable")]
    #[schema(value_type = Option<u32>)]
    pub weight_grams: Option<Option<u32>>,
    pub stock_quantity: Option<i64>,
    pub inventory_policy: Option<InventoryPolicy>,
    /// Replaces the whole attribute map.
    pub attributes: Option<Attributes>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateImageRequest {
    /// `image/jpeg`, `image/png`, `image/webp` or `image/gif`.
    pub content_type: String,
    /// The exact size of the file to upload: the upload URL is signed for it (≤ 10 MiB).
    pub size_bytes: u64,
    pub alt: Option<String>,
    /// The variants it shows; the whole product when absent.
    #[serde(default)]
    pub variant_ids: Vec<String>,
}

/// How to upload: `PUT` the file's bytes to `url` with exactly these headers, before
/// `expires_at`; then confirm the image.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadInstructions {
    pub method: String,
    pub url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImageUpload {
    pub image: super::model::ProductImage,
    pub upload: UploadInstructions,
}
