//! Products, options, variants and the generation plan: entities and rules, no I/O.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::store::Versioned;

pub const MAX_OPTIONS: usize = 3;
/// Shopify's limit, and ours: past it a product is really several products.
pub const MAX_VARIANTS: usize = 2048;
pub const MAX_TEXT: usize = 255;
pub const MAX_DESCRIPTION: usize = 20_000;
pub const MAX_TAGS: usize = 250;
pub const MAX_ATTRIBUTES: usize = 100;
pub const MAX_LIST_ITEMS: usize = 100;
/// The largest price we accept, in minor units (a billion of the major unit).
pub const MAX_PRICE_MINOR: i64 = 100_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InventoryPolicy {
    /// Refuse to sell when the stock is 0 or less.
    #[default]
    Deny,
    /// Keep selling (backorders).
    Continue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    Active,
    /// Its option value was removed: kept for history (orders name it), never sold.
    Archived,
}

/// A typed attribute value: `{"type": "number", "value": 3.5}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Attribute {
    Text(String),
    Number(f64),
    Boolean(bool),
    /// `YYYY-MM-DD`.
    Date(String),
    List(Vec<String>),
}

pub type Attributes = BTreeMap<String, Attribute>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OptionValue {
    pub id: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductOption {
    pub id: String,
    pub name: String,
    /// In display order.
    pub values: Vec<OptionValue>,
    /// Values removed from the option: no variant is sold with them, but archived variants
    /// still name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_values: Vec<OptionValue>,
}

impl ProductOption {
    /// The text of one of the option's values, current or retired.
    pub fn value_text(&self, value_id: &str) -> Option<&str> {
        self.values.iter().chain(&self.retired_values).find(|v| v.id == value_id).map(|v| v.value.as_str())
    }
}

/// What a newly generated variant starts with (every field optional in a request).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct VariantDefaults {
    pub price_minor: i64,
    pub compare_at_price_minor: Option<i64>,
    pub weight_grams: Option<u32>,
    pub inventory_policy: InventoryPolicy,
}

/// A variant generation job in flight: while present, no variant of the product may be
/// written by anyone but that job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationLock {
    pub job_id: String,
    pub options_revision: u64,
    pub started_at: String,
}

/// How long a lock holds without its job finishing: past it (a job that never ran, or died on
/// its last try before it could release), new options may take the product over. Five tries
/// of a 300 s function 1,800 s apart fit well inside it.
pub const GENERATION_LEASE_SECONDS: i64 = 3 * 3600;

impl GenerationLock {
    pub fn expired_at(&self, now_epoch_s: i64) -> bool {
        let started = time::OffsetDateTime::parse(&self.started_at, &time::format_description::well_known::Rfc3339);
        started.map_or(true, |t| t.unix_timestamp() + GENERATION_LEASE_SECONDS < now_epoch_s)
    }
}

/// A product, stored at `V#<vendor>#PRODUCT#<id>` / `PRODUCT`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: String,
    pub handle: String,
    pub title: String,
    pub description: String,
    pub status: ProductStatus,
    pub tags: Vec<String>,
    pub attributes: Attributes,
    /// In display order.
    pub options: Vec<ProductOption>,
    /// ISO 4217: every variant's prices are in it.
    pub currency: String,
    pub variant_defaults: VariantDefaults,
    /// Active variants once the last generation finished.
    pub variant_count: u32,
    /// Bumped by every change of the options.
    pub options_revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<GenerationLock>,
    /// In display order; uploads in progress are `pending` until confirmed.
    #[serde(default)]
    pub images: Vec<ProductImage>,
    /// Storefronts listing the product, kept with the listings in one transaction, so a
    /// catalogue write knows which listings' cards to refresh without a lookup.
    #[serde(default)]
    pub storefronts: Vec<String>,
    /// Set when the product is mirrored from the vendor's Shopify shop, which owns it then:
    /// the sync writes it, people change it in Shopify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalProduct>,
    pub created_at: String,
    pub updated_at: String,
}

/// Where a mirrored product comes from, and which upstream state it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalProduct {
    /// `shopify`.
    pub source: String,
    /// The upstream id (`gid://shopify/Product/…`).
    pub id: String,
    /// The upstream `updatedAt` of the state held: an older state never replaces a newer one.
    pub updated_at: String,
    /// A digest of everything mapped from upstream (product and variants): a sync whose
    /// mapping gives the same digest has nothing to write.
    pub digest: String,
}

impl Product {
    /// Mirrored products are changed upstream, not through the API.
    pub fn synced_from(&self) -> Option<&str> {
        self.external.as_ref().map(|e| e.source.as_str())
    }
}

pub const MAX_IMAGES: usize = 50;
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024;
/// Image types and the extension their objects get.
pub const IMAGE_TYPES: &[(&str, &str)] =
    &[("image/jpeg", "jpg"), ("image/png", "png"), ("image/webp", "webp"), ("image/gif", "gif")];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// An upload URL was handed out; the object is not confirmed yet.
    Pending,
    /// The object exists with the declared type and size.
    Ready,
}

/// An image of a product (or of some of its variants), an object in the assets bucket under
/// `vendors/<vendor>/products/<product>/images/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProductImage {
    pub id: String,
    /// The object key.
    pub key: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub alt: Option<String>,
    /// The variants it shows; the whole product when empty.
    pub variant_ids: Vec<String>,
    pub status: ImageStatus,
    pub created_at: String,
}

/// A variant, stored in its product's partition at `VARIANT#<id>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub id: String,
    pub product_id: String,
    /// Option id → value id: the variant's identity within the product.
    pub option_values: BTreeMap<String, String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub price_minor: i64,
    pub compare_at_price_minor: Option<i64>,
    pub currency: String,
    pub weight_grams: Option<u32>,
    pub stock_quantity: i64,
    pub inventory_policy: InventoryPolicy,
    pub attributes: Attributes,
    pub status: VariantStatus,
    /// The latest bulk update jobs that changed the variant (at most
    /// [`RECENT_BULK_JOBS`]): a retried job skips it, so an adjustment (stock +5,
    /// price -10 %) is applied once even when other jobs changed it in between.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bulk_jobs: Vec<String>,
    /// The upstream variant of a mirrored product's variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalVariant>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalVariant {
    /// `gid://shopify/ProductVariant/…`.
    pub id: String,
    /// `gid://shopify/InventoryItem/…`: inventory webhooks name the variant by it.
    pub inventory_item_id: String,
}

/// How many bulk jobs a variant remembers: more jobs than this would have to change it
/// between a job's crash and its retry for the retry to apply twice.
pub const RECENT_BULK_JOBS: usize = 16;

impl Variant {
    /// Notes that bulk job `job_id` changed the variant.
    pub fn remember_bulk_job(&mut self, job_id: &str) {
        self.bulk_jobs.push(job_id.to_owned());
        let excess = self.bulk_jobs.len().saturating_sub(RECENT_BULK_JOBS);
        self.bulk_jobs.drain(..excess);
    }

    pub fn new(product: &Product, id: String, option_values: BTreeMap<String, String>, now: &str) -> Self {
        let d = &product.variant_defaults;
        Self {
            id,
            product_id: product.id.clone(),
            option_values,
            sku: None,
            barcode: None,
            price_minor: d.price_minor,
            compare_at_price_minor: d.compare_at_price_minor,
            currency: product.currency.clone(),
            weight_grams: d.weight_grams,
            stock_quantity: 0,
            inventory_policy: d.inventory_policy,
            attributes: Attributes::new(),
            status: VariantStatus::Active,
            bulk_jobs: Vec::new(),
            external: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// Can it be sold now?
    pub fn in_stock(&self) -> bool {
        self.stock_quantity > 0 || self.inventory_policy == InventoryPolicy::Continue
    }
}

/// The variant's option values in the product's option order, as `(option, value)` texts.
/// A value the product no longer has (an archived variant's) shows as its id.
pub fn variant_labels<'a>(options: &'a [ProductOption], variant: &'a Variant) -> Vec<(&'a str, &'a str)> {
    let mut labels = Vec::new();
    for option in options {
        if let Some(value_id) = variant.option_values.get(&option.id) {
            labels.push((option.name.as_str(), option.value_text(value_id).unwrap_or(value_id)));
        }
    }
    labels
}

/// Number of variants an option set makes (1 with no options: the default variant).
pub fn combinations(options: &[ProductOption]) -> usize {
    options.iter().fold(1usize, |n, o| n.saturating_mul(o.values.len()))
}

/// Every combination of the options' values, first option outermost (S/Red, S/Blue, M/Red…).
pub fn cartesian(options: &[ProductOption]) -> Vec<Vec<&str>> {
    let mut combos: Vec<Vec<&str>> = vec![Vec::new()];
    for option in options {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                option.values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.id.as_str());
                    next
                })
            })
            .collect();
    }
    combos
}

/// What a generation does to a product's variants.
#[derive(Debug, Default)]
pub struct GenerationPlan {
    /// Option values (option id → value id) of the variants to create, in display order.
    pub create: Vec<BTreeMap<String, String>>,
    /// Existing variants to rewrite: given the new option's value, or archived.
    pub change: Vec<Versioned<Variant>>,
    /// Active variants left exactly as they are.
    pub kept: usize,
    pub archived: usize,
}

impl GenerationPlan {
    pub fn writes(&self) -> usize {
        self.create.len() + self.change.len()
    }

    pub fn active_after(&self) -> usize {
        self.kept + self.change.len() - self.archived + self.create.len()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} variants created, {} archived, {} given a new option's value, {} kept",
            self.create.len(),
            self.archived,
            self.change.len() - self.archived,
            self.kept
        )
    }
}

/// Plans the variants for `options` given the product's `existing` variants. Pure and
/// deterministic, so running it again after it was applied plans nothing (regeneration is
/// idempotent) and a job that died half-way resumes where it stopped.
///
/// - An active variant keeps its data when its values all still exist (renamed or moved
///   values are the same ids).
/// - A variant with a removed value is archived; archived variants are never revived.
/// - A new option gives every active variant its first value.
/// - A removed option drops out of every variant; where that makes two variants the same
///   combination, the oldest (smallest id) keeps it and the others are archived.
pub fn plan_generation(options: &[ProductOption], existing: &[Versioned<Variant>]) -> GenerationPlan {
    let mut plan = GenerationPlan::default();
    let values: Vec<HashSet<&str>> = options.iter().map(|o| o.values.iter().map(|v| v.id.as_str()).collect()).collect();
    let mut active: Vec<&Versioned<Variant>> =
        existing.iter().filter(|v| v.value.status == VariantStatus::Active).collect();
    active.sort_by(|a, b| a.value.id.cmp(&b.value.id));
    let mut claimed: BTreeSet<Vec<String>> = BTreeSet::new();
    for variant in active {
        let mut normalized = BTreeMap::new();
        let mut valid = true;
        for (option, allowed) in options.iter().zip(&values) {
            match variant.value.option_values.get(&option.id) {
                Some(value) if allowed.contains(value.as_str()) => {
                    normalized.insert(option.id.clone(), value.clone());
                }
                Some(_) => valid = false,
                None => match option.values.first() {
                    Some(first) => {
                        normalized.insert(option.id.clone(), first.id.clone());
                    }
                    None => valid = false,
                },
            }
        }
        let combo: Vec<String> = options.iter().filter_map(|o| normalized.get(&o.id).cloned()).collect();
        if !valid || !claimed.insert(combo) {
            let mut archived = variant.clone();
            archived.value.status = VariantStatus::Archived;
            plan.archived += 1;
            plan.change.push(archived);
        } else if normalized != variant.value.option_values {
            let mut moved = variant.clone();
            moved.value.option_values = normalized;
            plan.change.push(moved);
        } else {
            plan.kept += 1;
        }
    }
    for combo in cartesian(options) {
        let key: Vec<String> = combo.iter().map(|s| (*s).to_owned()).collect();
        if claimed.insert(key.clone()) {
            plan.create.push(options.iter().map(|o| o.id.clone()).zip(key).collect());
        }
    }
    plan
}

// ---------------------------------------------------------------- validation

fn check_text(value: &str, pointer: &str, max: usize, errors: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(pointer, "must not be blank"));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(pointer, format!("must be at most {max} characters")));
    }
}

/// A handle is the product's URL slug: 1–255 of `[a-z0-9-]`, not starting or ending with `-`.
pub fn check_handle(handle: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    let valid = (1..=MAX_TEXT).contains(&handle.len())
        && handle.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !handle.starts_with('-')
        && !handle.ends_with('-');
    if !valid {
        errors.push(FieldError::new(
            pointer,
            "must be 1-255 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ));
    }
}

/// The handle a title suggests: `"Summer Tee (Red)"` → `summer-tee-red`.
pub fn handle_from_title(title: &str) -> String {
    let mut handle = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            handle.push(c);
        } else if !handle.is_empty() && !handle.ends_with('-') {
            handle.push('-');
        }
    }
    let trimmed = handle.trim_end_matches('-');
    trimmed.chars().take(MAX_TEXT).collect::<String>().trim_end_matches('-').to_owned()
}

/// A SKU: 1–64 printable characters without spaces at either end.
pub fn check_sku(sku: &str, pointer: &str, errors: &mut Vec<FieldError>) {
    if sku.is_empty() || sku.len() > 64 || sku.trim() != sku || sku.chars().any(char::is_control) {
        errors.push(FieldError::new(pointer, "must be 1-64 printable characters without leading or trailing spaces"));
    }
}

/// A price changed by a percentage (-100..=1000), rounded half up to the minor unit, in
/// integers: prices are never negative.
pub fn adjust_price(price_minor: i64, percent: i32) -> i64 {
    ((price_minor as i128 * (100 + percent as i128) + 50) / 100) as i64
}

pub fn check_price(value: i64, pointer: &str, errors: &mut Vec<FieldError>) {
    if !(0..=MAX_PRICE_MINOR).contains(&value) {
        errors.push(FieldError::new(pointer, format!("must be 0..={MAX_PRICE_MINOR} minor units")));
    }
}

pub fn check_tags(tags: &[String], pointer: &str, errors: &mut Vec<FieldError>) {
    if tags.len() > MAX_TAGS {
        errors.push(FieldError::new(pointer, format!("at most {MAX_TAGS} tags")));
    }
    for (i, tag) in tags.iter().enumerate() {
        check_text(tag, &format!("{pointer}/{i}"), MAX_TEXT, errors);
    }
}

pub fn check_attributes(attributes: &Attributes, pointer: &str, errors: &mut Vec<FieldError>) {
    if attributes.len() > MAX_ATTRIBUTES {
        errors.push(FieldError::new(pointer, format!("at most {MAX_ATTRIBUTES} attributes")));
    }
    for (name, value) in attributes {
        let at = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
        let name_ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            errors.push(FieldError::new(&at, "attribute names are 1-64 characters of a-z, 0-9 and '_'"));
        }
        match value {
            Attribute::Text(text) if text.chars().count() > 4096 => {
                errors.push(FieldError::new(format!("{at}/value"), "at most 4096 characters"))
            }
            Attribute::Number(n) if !n.is_finite() => {
                errors.push(FieldError::new(format!("{at}/value"), "must be finite"))
            }
            Attribute::Date(date) if !is_date(date) => {
                errors.push(FieldError::new(format!("{at}/value"), "must be a date YYYY-MM-DD"))
            }
            Attribute::List(items) if items.len() > MAX_LIST_ITEMS => {
                errors.push(FieldError::new(format!("{at}/value"), format!("at most {MAX_LIST_ITEMS} items")))
            }
            Attribute::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_text(item, &format!("{at}/value/{i}"), MAX_TEXT, errors);
                }
            }
            _ => {}
        }
    }
}

fn is_date(value: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    value.len() == 10 && time::Date::parse(value, format).is_ok()
}

/// The largest item we write: DynamoDB's limit is 400 KB, and the store adds keys and
/// attribute names around the fields.
pub const MAX_ITEM_BYTES: usize = 350_000;
/// Retired option values kept to label archived variants; older ones are dropped (their
/// variants then show the value's id).
pub const MAX_RETIRED_VALUES: usize = 1_000;

fn check_size<T: Serialize>(value: &T, what: &str, errors: &mut Vec<FieldError>) {
    let bytes = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if bytes > MAX_ITEM_BYTES {
        errors.push(FieldError::new("", format!("the {what} would be {bytes} bytes; at most {MAX_ITEM_BYTES} can be stored (shorten attributes, descriptions or option values)")));
    }
}

pub fn check_product(p: &Product, errors: &mut Vec<FieldError>) {
    check_size(p, "product", errors);
    check_text(&p.title, "/title", MAX_TEXT, errors);
    check_handle(&p.handle, "/handle", errors);
    if p.description.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new("/description", format!("must be at most {MAX_DESCRIPTION} characters")));
    }
    check_tags(&p.tags, "/tags", errors);
    check_attributes(&p.attributes, "/attributes", errors);
    check_variant_defaults(&p.variant_defaults, "/variant_defaults", errors);
}

pub fn check_variant_defaults(d: &VariantDefaults, pointer: &str, errors: &mut Vec<FieldError>) {
    check_price(d.price_minor, &format!("{pointer}/price_minor"), errors);
    if let Some(compare) = d.compare_at_price_minor {
        check_price(compare, &format!("{pointer}/compare_at_price_minor"), errors);
    }
}

pub fn check_variant(v: &Variant, errors: &mut Vec<FieldError>) {
    check_size(v, "variant", errors);
    if let Some(sku) = &v.sku {
        check_sku(sku, "/sku", errors);
    }
    if let Some(barcode) = &v.barcode
        && (barcode.is_empty() || barcode.len() > 64 || !barcode.bytes().all(|b| b.is_ascii_graphic()))
    {
        errors.push(FieldError::new("/barcode", "must be 1-64 printable characters without spaces"));
    }
    check_price(v.price_minor, "/price_minor", errors);
    if let Some(compare) = v.compare_at_price_minor {
        check_price(compare, "/compare_at_price_minor", errors);
    }
    if !(-1_000_000_000..=1_000_000_000).contains(&v.stock_quantity) {
        errors.push(FieldError::new("/stock_quantity", "must be within ±1,000,000,000"));
    }
    check_attributes(&v.attributes, "/attributes", errors);
}

/// An option as a client sends it: ids name existing options and values (kept, renamed or
/// moved); no id means new.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionInput {
    pub id: Option<String>,
    pub name: String,
    pub values: Vec<OptionValueInput>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionValueInput {
    pub id: Option<String>,
    pub value: String,
}

/// Resolves a client's option set against the product's current one: validates names,
/// uniqueness, ids and the variant limit, and gives new options and values fresh ids.
pub fn resolve_options(
    current: &[ProductOption],
    input: Vec<OptionInput>,
    new_id: &mut dyn FnMut() -> String,
) -> Result<Vec<ProductOption>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if input.len() > MAX_OPTIONS {
        errors.push(FieldError::new("/options", format!("at most {MAX_OPTIONS} options")));
    }
    let mut names = HashSet::new();
    let mut ids_seen: HashSet<String> = HashSet::new();
    let mut resolved = Vec::with_capacity(input.len());
    for (i, option) in input.into_iter().enumerate() {
        let at = format!("/options/{i}");
        if let Some(id) = &option.id
            && !ids_seen.insert(id.clone())
        {
            errors.push(FieldError::new(format!("{at}/id"), format!("{id} appears twice")));
        }
        check_text(&option.name, &format!("{at}/name"), MAX_TEXT, &mut errors);
        if !names.insert(option.name.trim().to_lowercase()) {
            errors.push(FieldError::new(
                format!("{at}/name"),
                format!("another option is already named {}", option.name),
            ));
        }
        let existing = match &option.id {
            Some(id) => match current.iter().find(|o| &o.id == id) {
                Some(found) => Some(found),
                None => {
                    errors.push(FieldError::new(format!("{at}/id"), format!("the product has no option {id}")));
                    None
                }
            },
            None => None,
        };
        if option.values.is_empty() {
            errors.push(FieldError::new(format!("{at}/values"), "an option needs at least one value"));
        }
        let mut texts = HashSet::new();
        let mut values = Vec::with_capacity(option.values.len());
        for (j, value) in option.values.into_iter().enumerate() {
            let vat = format!("{at}/values/{j}");
            check_text(&value.value, &format!("{vat}/value"), MAX_TEXT, &mut errors);
            if !texts.insert(value.value.trim().to_lowercase()) {
                errors.push(FieldError::new(
                    format!("{vat}/value"),
                    format!("{} appears twice in this option", value.value),
                ));
            }
            if let Some(id) = &value.id
                && !ids_seen.insert(id.clone())
            {
                errors.push(FieldError::new(format!("{vat}/id"), format!("{id} appears twice")));
            }
            let id = match value.id {
                Some(id) if existing.is_some_and(|o| o.values.iter().any(|v| v.id == id)) => id,
                Some(id) => {
                    errors.push(FieldError::new(
                        format!("{vat}/id"),
                        format!("option {} has no value {id}", option.name),
                    ));
                    id
                }
                None => new_id(),
            };
            values.push(OptionValue { id, value: value.value.trim().to_owned() });
        }
        let retired_values = existing
            .map(|o| {
                let removed = o.values.iter().filter(|old| !values.iter().any(|v| v.id == old.id));
                let all: Vec<OptionValue> = o.retired_values.iter().chain(removed).cloned().collect();
                all[all.len().saturating_sub(MAX_RETIRED_VALUES)..].to_vec()
            })
            .unwrap_or_default();
        let id = option.id.unwrap_or_else(&mut *new_id);
        resolved.push(ProductOption { id, name: option.name.trim().to_owned(), values, retired_values });
    }
    let count = resolved.iter().fold(1usize, |n, o| n.saturating_mul(o.values.len().max(1)));
    if count > MAX_VARIANTS {
        errors.push(FieldError::new(
            "/options",
            format!("these options make {count} variants; a product has at most {MAX_VARIANTS}"),
        ));
    }
    if errors.is_empty() { Ok(resolved) } else { Err(errors) }
}

/// A product for the unit tests of this crate: active, in EUR, `price_minor` for new variants.
#[cfg(test)]
pub(crate) fn test_product(options: Vec<ProductOption>, price_minor: i64) -> Product {
    Product {
        id: "p".into(),
        handle: "p".into(),
        title: "P".into(),
        description: String::new(),
        status: ProductStatus::Active,
        tags: vec![],
        attributes: Attributes::new(),
        options,
        currency: "EUR".into(),
        variant_defaults: VariantDefaults { price_minor, ..Default::default() },
        variant_count: 0,
        options_revision: 1,
        generation: None,
        images: vec![],
        storefronts: vec![],
        external: None,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(id: &str, values: &[(&str, &str)]) -> ProductOption {
        ProductOption {
            id: id.into(),
            name: id.to_uppercase(),
            values: values.iter().map(|(id, v)| OptionValue { id: (*id).into(), value: (*v).into() }).collect(),
            retired_values: vec![],
        }
    }

    fn product(options: Vec<ProductOption>) -> Product {
        test_product(options, 1000)
    }

    /// Applies a plan the way the store would, numbering new variants after the existing ones.
    fn apply(p: &Product, existing: Vec<Versioned<Variant>>) -> Vec<Versioned<Variant>> {
        let plan = plan_generation(&p.options, &existing);
        let mut by_id: BTreeMap<String, Versioned<Variant>> =
            existing.into_iter().map(|v| (v.value.id.clone(), v)).collect();
        for changed in plan.change {
            by_id.insert(changed.value.id.clone(), Versioned { version: changed.version + 1, value: changed.value });
        }
        let start = by_id.len();
        for (i, values) in plan.create.into_iter().enumerate() {
            let id = format!("v{:05}", start + i);
            by_id.insert(id.clone(), Versioned { value: Variant::new(p, id, values, ""), version: 1 });
        }
        by_id.into_values().collect()
    }

    fn active(variants: &[Versioned<Variant>]) -> Vec<&Variant> {
        variants.iter().map(|v| &v.value).filter(|v| v.status == VariantStatus::Active).collect()
    }

    #[test]
    fn no_options_make_one_default_variant_which_the_first_option_adopts() {
        let mut p = product(vec![]);
        let mut variants = apply(&p, vec![]);
        assert_eq!(active(&variants).len(), 1);
        variants[0].value.price_minor = 4242;
        p.options = vec![option("size", &[("s", "S"), ("m", "M")])];
        let variants = apply(&p, variants);
        let live = active(&variants);
        assert_eq!(live.len(), 2);
        let small = live.iter().find(|v| v.option_values["size"] == "s").unwrap();
        assert_eq!(small.price_minor, 4242, "the default variant became S and kept its price");
    }

    #[test]
    fn rename_and_reorder_keep_variants_and_replanning_is_a_no_op() {
        let mut p =
            product(vec![option("size", &[("s", "S"), ("m", "M")]), option("colour", &[("r", "Red"), ("b", "Blue")])]);
        let mut variants = apply(&p, vec![]);
        for (i, v) in variants.iter_mut().enumerate() {
            v.value.price_minor = 100 + i as i64;
        }
        let before: BTreeMap<_, _> =
            variants.iter().map(|v| (v.value.option_values.clone(), v.value.price_minor)).collect();
        p.options.reverse();
        p.options[0].values.reverse();
        p.options[1].values[0].value = "Small".into();
        let plan = plan_generation(&p.options, &variants);
        assert_eq!((plan.writes(), plan.kept), (0, 4));
        let after: BTreeMap<_, _> =
            variants.iter().map(|v| (v.value.option_values.clone(), v.value.price_minor)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn removing_an_option_keeps_the_oldest_variant_of_each_combination() {
        let mut p =
            product(vec![option("size", &[("s", "S"), ("m", "M")]), option("colour", &[("r", "Red"), ("b", "Blue")])]);
        let variants = apply(&p, vec![]);
        p.options.truncate(1);
        let variants = apply(&p, variants);
        let live = active(&variants);
        assert_eq!(live.len(), 2);
        assert!(live.iter().all(|v| v.option_values.len() == 1 && v.option_values.contains_key("size")));
        assert_eq!(variants.len(), 4, "nothing is deleted");
    }

    #[test]
    fn cartesian_is_first_option_outermost() {
        let options = vec![option("a", &[("1", "1"), ("2", "2")]), option("b", &[("x", "x"), ("y", "y")])];
        assert_eq!(cartesian(&options), vec![vec!["1", "x"], vec!["1", "y"], vec!["2", "x"], vec!["2", "y"]]);
        assert_eq!(combinations(&options), 4);
    }

    #[test]
    fn resolve_refuses_unknown_ids_duplicates_and_too_many_variants() {
        let current = vec![option("size", &[("s", "S")])];
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("new{n}")
        };
        let input = vec![OptionInput {
            id: Some("size".into()),
            name: "Size".into(),
            values: vec![
                OptionValueInput { id: Some("s".into()), value: "Small".into() },
                OptionValueInput { id: Some("zz".into()), value: "M".into() },
                OptionValueInput { id: None, value: "small".into() },
            ],
        }];
        let errors = resolve_options(&current, input, &mut next).unwrap_err();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/options/0/values/1/id", "/options/0/values/2/value"]);
        let big = |n: usize| OptionInput {
            id: None,
            name: format!("o{n}"),
            values: (0..n).map(|i| OptionValueInput { id: None, value: format!("v{i}") }).collect(),
        };
        assert!(resolve_options(&[], vec![big(2048)], &mut next).is_ok());
        let errors = resolve_options(&[], vec![big(2049)], &mut next).unwrap_err();
        assert!(errors[0].message.contains("2049 variants"));
        // The same id twice would make the same combination twice.
        let twice = vec![
            OptionInput {
                id: Some("size".into()),
                name: "A".into(),
                values: vec![OptionValueInput { id: Some("s".into()), value: "S".into() }],
            },
            OptionInput {
                id: Some("size".into()),
                name: "B".into(),
                values: vec![OptionValueInput { id: Some("s".into()), value: "T".into() }],
            },
        ];
        let errors = resolve_options(&current, twice, &mut next).unwrap_err();
        assert!(errors.iter().any(|e| e.pointer == "/options/1/id"), "{errors:?}");
    }

    #[test]
    fn a_lock_expires_after_its_lease() {
        let lock = |started_at: &str| GenerationLock {
            job_id: "j".into(),
            options_revision: 1,
            started_at: started_at.into(),
        };
        let now = time::macros::datetime!(2026-11-25 12:00 UTC).unix_timestamp();
        assert!(!lock("2026-11-25T11:00:00Z").expired_at(now));
        assert!(lock("2026-11-25T08:59:59Z").expired_at(now));
        assert!(lock("garbage").expired_at(now), "an unreadable lock holds nothing");
    }

    #[test]
    fn handles_from_titles() {
        assert_eq!(handle_from_title("Summer Tee (Red)"), "summer-tee-red");
        assert_eq!(handle_from_title("  --Ünïcode!! "), "n-code");
        let mut errors = vec![];
        check_handle(&handle_from_title("Summer Tee"), "/handle", &mut errors);
        assert!(errors.is_empty());
    }
}
