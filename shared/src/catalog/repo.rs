//! DynamoDB access for the catalogue, tenant-scoped.
//!
//! A product and its variants share one partition (`V#<vendor>#PRODUCT#<id>`: the product at
//! `PRODUCT`, variants at `VARIANT#<id>`), so a product's whole variant set is one Query; the
//! vendor's product list is GSI1 (`V#<vendor>#PRODUCTS`). Handles and SKUs are unique per
//! vendor through claim items written in the same transaction as their owner, so uniqueness
//! is the store's guarantee, not a read-then-write.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::model::{Product, Variant};
use crate::store::{
    Condition, Cursor, Expression, Item, QueryPage, StoreError, Table, Versioned, attr, decode, encode, keys,
};
use crate::tenancy::TenantScope;

const PRODUCT_ENTITY: &str = "product";
const VARIANT_ENTITY: &str = "variant";
const HANDLE_ENTITY: &str = "product_handle";
const SKU_ENTITY: &str = "sku";

/// Who holds a SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuClaim {
    pub sku: String,
    pub product_id: String,
    pub variant_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleClaim {
    pub handle: String,
    pub product_id: String,
}

pub struct CatalogRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> CatalogRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    fn product_item(&self, product: &Product, version: u64) -> Result<Item, StoreError> {
        let key = keys::product_key(self.scope, &product.id);
        let mut item = encode(&key, PRODUCT_ENTITY, Some(self.scope.vendor_id()), version, product)?;
        item.insert(attr::GSI1_PK.to_owned(), AttributeValue::S(keys::product_list_partition(self.scope)));
        item.insert(attr::GSI1_SK.to_owned(), AttributeValue::S(product.id.clone()));
        Ok(item)
    }

    fn variant_item(&self, variant: &Variant, version: u64) -> Result<Item, StoreError> {
        let key = keys::variant_key(self.scope, &variant.product_id, &variant.id);
        encode(&key, VARIANT_ENTITY, Some(self.scope.vendor_id()), version, variant)
    }

    // ------------------------------------------------------------ reads

    pub async fn product(&self, product_id: &str) -> Result<Option<Versioned<Product>>, StoreError> {
        self.table.get(&keys::product_key(self.scope, product_id)).await?.map(decode).transpose()
    }

    /// One page of the vendor's products, oldest first (one Query on GSI1).
    pub async fn products(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<Product>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: Some(attr::GSI1),
                partition: keys::product_list_partition(self.scope),
                sort_prefix: None,
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await
    }

    /// Products by id, those that exist (one BatchGetItem per 100).
    pub async fn products_by_id(&self, ids: &[String]) -> Result<Vec<Versioned<Product>>, StoreError> {
        let keys: Vec<_> = ids.iter().map(|id| keys::product_key(self.scope, id)).collect();
        self.table.batch_get(&keys).await?.into_iter().map(decode).collect()
    }

    pub async fn variant(&self, product_id: &str, variant_id: &str) -> Result<Option<Versioned<Variant>>, StoreError> {
        self.table.get(&keys::variant_key(self.scope, product_id, variant_id)).await?.map(decode).transpose()
    }

    /// One page of a product's variants, in creation order (one Query).
    pub async fn variants_page(
        &self,
        product_id: &str,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<Variant>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: None,
                partition: keys::variants_partition(self.scope, product_id),
                sort_prefix: Some(keys::VARIANT_SK_PREFIX.to_owned()),
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await
    }

    /// Every variant of a product, active and archived, strongly consistent: what a
    /// generation plans from.
    pub async fn all_variants(&self, product_id: &str) -> Result<Vec<Versioned<Variant>>, StoreError> {
        let items = self
            .table
            .query_all(&keys::variants_partition(self.scope, product_id), Some(keys::VARIANT_SK_PREFIX))
            .await?;
        items.into_iter().map(decode).collect()
    }

    /// The product and all its variants in one strongly consistent Query (they share a
    /// partition): what a storefront's product page shows.
    pub async fn product_with_variants(
        &self,
        product_id: &str,
    ) -> Result<Option<(Versioned<Product>, Vec<Versioned<Variant>>)>, StoreError> {
        let mut product = None;
        let mut variants = Vec::new();
        for item in self.table.query_all(&keys::variants_partition(self.scope, product_id), None).await? {
            let is_product = matches!(item.get(attr::SK), Some(AttributeValue::S(sk)) if sk == keys::PRODUCT_SK);
            if is_product {
                product = Some(decode(item)?);
            } else {
                variants.push(decode(item)?);
            }
        }
        Ok(product.map(|p| (p, variants)))
    }

    pub async fn sku_claim(&self, sku: &str) -> Result<Option<SkuClaim>, StoreError> {
        Ok(self.table.get(&keys::sku_key(self.scope, sku)).await?.map(decode).transpose()?.map(|v| v.value))
    }

    /// Who holds each of `skus` (those held by anyone): ⌈n/100⌉ BatchGetItem calls.
    pub async fn sku_claims(&self, skus: &[String]) -> Result<std::collections::HashMap<String, SkuClaim>, StoreError> {
        let keys: Vec<keys::Key> = skus.iter().map(|s| keys::sku_key(self.scope, s)).collect();
        let mut claims = std::collections::HashMap::new();
        for item in self.table.batch_get(&keys).await? {
            let claim: SkuClaim = decode(item)?.value;
            claims.insert(claim.sku.clone(), claim);
        }
        Ok(claims)
    }

    pub async fn handle_claim(&self, handle: &str) -> Result<Option<HandleClaim>, StoreError> {
        Ok(self
            .table
            .get(&keys::product_handle_key(self.scope, handle))
            .await?
            .map(decode)
            .transpose()?
            .map(|v| v.value))
    }

    // ------------------------------------------------------------ transaction items

    /// The product at `version`: created when `expected` is `None`, else replacing `expected`.
    pub fn put_product(&self, product: &Product, expected: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        let condition = expected.map_or(Condition::NotExists, Condition::VersionIs);
        self.table.transact_put(self.product_item(product, version)?, condition)
    }

    /// The variant: created when `expected` is `None`, else replacing `expected`.
    pub fn put_variant(&self, variant: &Variant, expected: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        let condition = expected.map_or(Condition::NotExists, Condition::VersionIs);
        self.table.transact_put(self.variant_item(variant, version)?, condition)
    }

    /// The product exists and no generation job holds it: every variant write outside that
    /// job carries this check, so the job's unconditional batch writes never race a person's
    /// edit. (Stock movements of orders must carry it too.)
    pub fn check_unlocked(&self, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_check(
            &keys::product_key(self.scope, product_id),
            &Expression {
                text: "attribute_exists(#pk) AND attribute_not_exists(#generation)",
                names: vec![("#pk", attr::PK), ("#generation", "generation")],
                values: vec![],
            },
        )
    }

    pub fn claim_handle(&self, handle: &str, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        let claim = HandleClaim { handle: handle.to_owned(), product_id: product_id.to_owned() };
        let item = encode(
            &keys::product_handle_key(self.scope, handle),
            HANDLE_ENTITY,
            Some(self.scope.vendor_id()),
            1,
            &claim,
        )?;
        self.table.transact_put(item, Condition::NotExists)
    }

    pub fn release_handle(&self, handle: &str, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_delete(
            &keys::product_handle_key(self.scope, handle),
            &Expression {
                text: "#product = :product",
                names: vec![("#product", "product_id")],
                values: vec![(":product", AttributeValue::S(product_id.to_owned()))],
            },
        )
    }

    /// Takes `sku` for the variant: free, or already this variant's.
    pub fn claim_sku(&self, sku: &str, variant: &Variant) -> Result<TransactWriteItem, StoreError> {
        let claim =
            SkuClaim { sku: sku.to_owned(), product_id: variant.product_id.clone(), variant_id: variant.id.clone() };
        let item = encode(&keys::sku_key(self.scope, sku), SKU_ENTITY, Some(self.scope.vendor_id()), 1, &claim)?;
        self.table.transact_put_if(
            item,
            &Expression {
                text: "attribute_not_exists(#pk) OR #variant = :variant",
                names: vec![("#pk", attr::PK), ("#variant", "variant_id")],
                values: vec![(":variant", AttributeValue::S(variant.id.clone()))],
            },
        )
    }

    pub fn release_sku(&self, sku: &str, variant_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_delete(
            &keys::sku_key(self.scope, sku),
            &Expression {
                text: "#variant = :variant",
                names: vec![("#variant", "variant_id")],
                values: vec![(":variant", AttributeValue::S(variant_id.to_owned()))],
            },
        )
    }

    /// Moves a variant's stock by `delta` without reading it. With `require` (a Deny-policy
    /// variant giving stock away), only when at least that much is there: the store refuses an
    /// oversell, however many recipients accept at once.
    pub fn move_stock(
        &self,
        product_id: &str,
        variant_id: &str,
        delta: i64,
        require: Option<i64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = keys::variant_key(self.scope, product_id, variant_id);
        let condition = match require {
            Some(need) => Expression {
                text: "attribute_exists(#pk) AND #stock >= :need",
                names: vec![("#pk", attr::PK), ("#stock", "stock_quantity")],
                values: vec![(":need", AttributeValue::N(need.to_string()))],
            },
            None => Expression { text: "attribute_exists(#pk)", names: vec![("#pk", attr::PK)], values: vec![] },
        };
        self.table.transact_add(&key, "stock_quantity", delta, &condition)
    }

    pub async fn commit(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.table.transact(items).await
    }

    /// Variants at their next version, unconditionally, ⌈n/25⌉ batch calls: only for the
    /// generation job holding the product's lock. Returns the number of calls.
    pub async fn batch_put_variants(&self, variants: &[Versioned<Variant>]) -> Result<u32, StoreError> {
        let items =
            variants.iter().map(|v| self.variant_item(&v.value, v.version + 1)).collect::<Result<Vec<_>, _>>()?;
        self.table.batch_put(items).await
    }
}
