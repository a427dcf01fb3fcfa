//! DynamoDB access for storefronts and listings, tenant-scoped, plus the one global read:
//! the resolver's lookup of a slug or host.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::model::{Listing, Storefront, StorefrontLookup};
use crate::store::keys::{self, LookupBy};
use crate::store::{
    Condition, Cursor, Expression, Item, QueryPage, StoreError, Table, Versioned, attr, decode, encode,
};
use crate::tenancy::TenantScope;

const STOREFRONT_ENTITY: &str = "storefront";
const LOOKUP_ENTITY: &str = "storefront_lookup";
const LISTING_ENTITY: &str = "listing";

/// The storefront resolver's read: the lookup item for a slug or host. Global by nature (the
/// vendor is what it finds out), so it takes no scope; only the resolver calls it.
pub async fn lookup(table: &Table, by: LookupBy, value: &str) -> Result<Option<StorefrontLookup>, StoreError> {
    Ok(table.get(&keys::storefront_lookup_key(by, value)).await?.map(decode).transpose()?.map(|v| v.value))
}

pub struct StorefrontRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

fn owned_by(vendor: &str, storefront: &str) -> Expression {
    Expression {
        text: "#owner = :owner AND #storefront = :storefront",
        names: vec![("#owner", "owner_vendor"), ("#storefront", "storefront_id")],
        values: vec![
            (":owner", AttributeValue::S(vendor.to_owned())),
            (":storefront", AttributeValue::S(storefront.to_owned())),
        ],
    }
}

impl<'a> StorefrontRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    pub async fn storefront(&self, id: &str) -> Result<Option<Versioned<Storefront>>, StoreError> {
        self.table.get(&keys::storefront_key(self.scope, id)).await?.map(decode).transpose()
    }

    pub async fn storefronts(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<Storefront>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: None,
                partition: keys::tenant_partition(self.scope),
                sort_prefix: Some(keys::STOREFRONT_SK_PREFIX.to_owned()),
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await
    }

    pub fn put_storefront(&self, s: &Storefront, expected: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        let item = encode(
            &keys::storefront_key(self.scope, &s.id),
            STOREFRONT_ENTITY,
            Some(self.scope.vendor_id()),
            version,
            s,
        )?;
        self.table.transact_put(item, expected.map_or(Condition::NotExists, Condition::VersionIs))
    }

    fn lookup_item(&self, by: LookupBy, value: &str, s: &Storefront) -> Result<Item, StoreError> {
        // No vendor passed: a global item carries no `vendor_id` attribute.
        encode(
            &keys::storefront_lookup_key(by, value),
            LOOKUP_ENTITY,
            None,
            1,
            &StorefrontLookup::of(self.scope.vendor_id().as_str(), s),
        )
    }

    /// Takes a slug or host for the storefront: it must be free.
    pub fn claim_lookup(&self, by: LookupBy, value: &str, s: &Storefront) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_put(self.lookup_item(by, value, s)?, Condition::NotExists)
    }

    /// Rewrites a lookup the storefront already holds (its public face changed).
    pub fn refresh_lookup(&self, by: LookupBy, value: &str, s: &Storefront) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_put_if(self.lookup_item(by, value, s)?, &owned_by(self.scope.vendor_id().as_str(), &s.id))
    }

    pub fn release_lookup(
        &self,
        by: LookupBy,
        value: &str,
        storefront_id: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_delete(
            &keys::storefront_lookup_key(by, value),
            &owned_by(self.scope.vendor_id().as_str(), storefront_id),
        )
    }

    // ------------------------------------------------------------ listings

    pub async fn listing(
        &self,
        storefront_id: &str,
        product_id: &str,
    ) -> Result<Option<Versioned<Listing>>, StoreError> {
        self.table.get(&keys::listing_key(self.scope, storefront_id, product_id)).await?.map(decode).transpose()
    }

    /// The listings of a product on `storefront_ids` (those that exist): one BatchGetItem.
    pub async fn listings_of_product(
        &self,
        product_id: &str,
        storefront_ids: &[String],
    ) -> Result<Vec<Versioned<Listing>>, StoreError> {
        let keys: Vec<keys::Key> =
            storefront_ids.iter().map(|id| keys::listing_key(self.scope, id, product_id)).collect();
        self.table.batch_get(&keys).await?.into_iter().map(decode).collect()
    }

    /// A storefront's listings in product id order, for staff (listed or not).
    pub async fn listings(
        &self,
        storefront_id: &str,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<Versioned<Listing>>, Option<Cursor>), StoreError> {
        self.table
            .query_entities(QueryPage {
                index: None,
                partition: keys::listings_partition(self.scope, storefront_id),
                sort_prefix: Some(keys::LISTING_SK_PREFIX.to_owned()),
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await
    }

    /// One page of what the storefront shows publicly: one Query on the sparse GSI1 index in
    /// sort order, the availability window filtered at the time of the read.
    pub async fn public_listings(
        &self,
        storefront_id: &str,
        limit: i32,
        cursor: Option<&Cursor>,
        now_epoch_s: i64,
    ) -> Result<(Vec<Listing>, Option<Cursor>), StoreError> {
        let (entities, next) = self.table.query_entities::<Listing>(QueryPage {
                index: Some(attr::GSI1),
                partition: keys::public_listing_partition(self.scope, storefront_id),
                sort_prefix: None,
                limit,
                cursor,
                descending: false,
                filter: Some(Expression {
                    text: "(attribute_not_exists(#from) OR #from <= :now) AND (attribute_not_exists(#until) OR #until > :now)",
                    names: vec![("#from", "available_from_epoch_s"), ("#until", "available_until_epoch_s")],
                    values: vec![(":now", AttributeValue::N(now_epoch_s.to_string()))],
                }),
            }).await?;
        Ok((entities.into_iter().map(|v| v.value).collect(), next))
    }

    fn listing_item(&self, listing: &Listing, version: u64) -> Result<Item, StoreError> {
        let key = keys::listing_key(self.scope, &listing.storefront_id, &listing.product_id);
        let mut item = encode(&key, LISTING_ENTITY, Some(self.scope.vendor_id()), version, listing)?;
        if listing.is_listed() {
            // Sparse index: only listed products are in the public partition.
            item.insert(
                attr::GSI1_PK.to_owned(),
                AttributeValue::S(keys::public_listing_partition(self.scope, &listing.storefront_id)),
            );
            item.insert(
                attr::GSI1_SK.to_owned(),
                AttributeValue::S(format!("{:010}#{}", listing.overrides.sort_order, listing.product_id)),
            );
        }
        Ok(item)
    }

    pub fn put_listing(&self, listing: &Listing, expected: Option<u64>) -> Result<TransactWriteItem, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        self.table.transact_put(
            self.listing_item(listing, version)?,
            expected.map_or(Condition::NotExists, Condition::VersionIs),
        )
    }

    /// A card refresh outside a transaction: replaces the version read.
    pub async fn replace_listing(&self, listing: &Listing, expected: u64) -> Result<(), StoreError> {
        self.table.put(self.listing_item(listing, expected + 1)?, Condition::VersionIs(expected)).await
    }

    /// A card refresh from a copy of the product: replaces the listing's version read while
    /// the product is still `product_version` (item 0 the listing, 1 the product).
    pub async fn replace_listing_of_product(
        &self,
        listing: &Listing,
        expected: u64,
        product_version: u64,
    ) -> Result<(), StoreError> {
        let product_is = Expression {
            text: "#version = :version",
            names: vec![("#version", attr::VERSION)],
            values: vec![(":version", AttributeValue::N(product_version.to_string()))],
        };
        self.table
            .transact(vec![
                self.table.transact_put(self.listing_item(listing, expected + 1)?, Condition::VersionIs(expected))?,
                self.table.transact_check(&keys::product_key(self.scope, &listing.product_id), &product_is)?,
            ])
            .await
    }

    pub fn delete_listing(&self, storefront_id: &str, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_delete(
            &keys::listing_key(self.scope, storefront_id, product_id),
            &Expression { text: "attribute_exists(#pk)", names: vec![("#pk", attr::PK)], values: vec![] },
        )
    }

    pub async fn commit(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.table.transact(items).await
    }
}
