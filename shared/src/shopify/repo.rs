//! DynamoDB access for Shopify connections. The connection is a configuration item of the
//! vendor; the shop lookup and the install nonces are global items (the webhook and the OAuth
//! redirect arrive without a tenant) that only this module's resolvers read.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::model::{InstallState, ShopLookup, ShopifyConnection};
use crate::integrations::shopify::ShopDomain;
use crate::store::keys::{self, sk};
use crate::store::{Condition, Expression, PutOutcome, StoreError, Table, Versioned, attr, decode, encode};
use crate::tenancy::TenantScope;
use crate::vendors::repo::ConfigItem;

const LOOKUP_ENTITY: &str = "shopify_shop";
const STATE_ENTITY: &str = "shopify_install_state";
const WEBHOOK_ENTITY: &str = "shopify_webhook";
const ORDER_LINK_ENTITY: &str = "shopify_order_link";
/// Webhook receipts are kept long enough to outlast Shopify's 48 hours of retries.
const WEBHOOK_RECEIPT_SECONDS: i64 = 7 * 24 * 3600;

impl ConfigItem for ShopifyConnection {
    const SK: &'static str = sk::SHOPIFY;
    const ENTITY: &'static str = "shopify_connection";
}

/// A webhook delivery as accepted.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WebhookReceipt {
    pub webhook_id: String,
    pub topic: String,
    pub received_at: String,
}

/// A shop order's unit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ShopOrderLink {
    pub order_id: String,
    pub number: u32,
}

pub struct ShopifyRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> ShopifyRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    pub async fn connection(&self) -> Result<Option<Versioned<ShopifyConnection>>, StoreError> {
        self.table.get(&keys::tenant_key(self.scope, sk::SHOPIFY)).await?.map(decode).transpose()
    }

    pub fn put_connection(
        &self,
        connection: &ShopifyConnection,
        expected: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        let condition = expected.map_or(Condition::NotExists, Condition::VersionIs);
        let item = encode(
            &keys::tenant_key(self.scope, sk::SHOPIFY),
            <ShopifyConnection as ConfigItem>::ENTITY,
            Some(self.scope.vendor_id()),
            version,
            connection,
        )?;
        self.table.transact_put(item, condition)
    }

    /// Deletes the connection (shop/redact), if still the version read.
    pub async fn delete_connection(&self, expected: u64) -> Result<(), StoreError> {
        let condition = Expression {
            text: "#version = :version",
            names: vec![("#version", attr::VERSION)],
            values: vec![(":version", AttributeValue::N(expected.to_string()))],
        };
        self.table.delete(&keys::tenant_key(self.scope, sk::SHOPIFY), &condition).await
    }

    pub fn put_order_link(
        &self,
        shop_order_number: &str,
        order_id: &str,
        number: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        let link = ShopOrderLink { order_id: order_id.to_owned(), number };
        let item = encode(
            &keys::shopify_order_key(self.scope, shop_order_number),
            ORDER_LINK_ENTITY,
            Some(self.scope.vendor_id()),
            1,
            &link,
        )?;
        self.table.transact_put(item, Condition::Always)
    }

    /// The shop's lookup, taken for this vendor: free, or this vendor's already.
    pub fn claim_shop(&self, shop: &ShopDomain) -> Result<TransactWriteItem, StoreError> {
        let lookup = ShopLookup { shop: shop.clone(), owner_vendor: self.scope.vendor_id().to_string() };
        let item = encode(&keys::shopify_shop_key(shop.as_str()), LOOKUP_ENTITY, None, 1, &lookup)?;
        self.table.transact_put_if(
            item,
            &Expression {
                text: "attribute_not_exists(#pk) OR #vendor = :vendor",
                names: vec![("#pk", attr::PK), ("#vendor", "owner_vendor")],
                values: vec![(":vendor", AttributeValue::S(self.scope.vendor_id().to_string()))],
            },
        )
    }

    /// Gives a shop's lookup up in a transaction (the vendor moved to another shop): only if
    /// it is still this vendor's.
    pub fn transact_release_shop(&self, shop: &ShopDomain) -> Result<TransactWriteItem, StoreError> {
        self.table.transact_delete(
            &keys::shopify_shop_key(shop.as_str()),
            &Expression {
                text: "attribute_not_exists(#pk) OR #vendor = :vendor",
                names: vec![("#pk", attr::PK), ("#vendor", "owner_vendor")],
                values: vec![(":vendor", AttributeValue::S(self.scope.vendor_id().to_string()))],
            },
        )
    }

    /// Gives the shop's lookup up (shop/redact): only this vendor's.
    pub async fn release_shop(&self, shop: &ShopDomain) -> Result<(), StoreError> {
        let condition = Expression {
            text: "#vendor = :vendor",
            names: vec![("#vendor", "owner_vendor")],
            values: vec![(":vendor", AttributeValue::S(self.scope.vendor_id().to_string()))],
        };
        match self.table.delete(&keys::shopify_shop_key(shop.as_str()), &condition).await {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Records a webhook delivery; `false` when it was accepted before.
    pub async fn record_webhook(&self, receipt: &WebhookReceipt) -> Result<bool, StoreError> {
        let mut item = encode(
            &keys::shopify_webhook_key(self.scope, &receipt.webhook_id),
            WEBHOOK_ENTITY,
            Some(self.scope.vendor_id()),
            1,
            receipt,
        )?;
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + WEBHOOK_RECEIPT_SECONDS;
        item.insert(attr::EXPIRES_AT_EPOCH_S.to_owned(), AttributeValue::N(expires.to_string()));
        let outcome = self
            .table
            .put_unless(
                item,
                &Expression { text: "attribute_not_exists(#pk)", names: vec![("#pk", attr::PK)], values: vec![] },
            )
            .await?;
        Ok(matches!(outcome, PutOutcome::Written))
    }

    /// Whether a delivery was accepted before.
    pub async fn webhook_seen(&self, webhook_id: &str) -> Result<bool, StoreError> {
        Ok(self.table.get(&keys::shopify_webhook_key(self.scope, webhook_id)).await?.is_some())
    }

    /// Stores a pending install's nonce (expiring through the table's TTL as well).
    pub async fn put_install_state(&self, nonce: &str, state: &InstallState) -> Result<(), StoreError> {
        let item = encode(&keys::shopify_install_state_key(nonce), STATE_ENTITY, None, 1, state)?;
        self.table.put_expiring(item, state.expires_at).await
    }
}

/// The vendor a shop is connected to (the webhook's resolver).
pub(crate) async fn shop_lookup(table: &Table, shop: &ShopDomain) -> Result<Option<ShopLookup>, StoreError> {
    Ok(table.get(&keys::shopify_shop_key(shop.as_str())).await?.map(decode::<ShopLookup>).transpose()?.map(|v| v.value))
}

/// Takes a pending install's nonce, once (see [`Table::take_unexpired`]).
pub(crate) async fn take_install_state(
    table: &Table,
    nonce: &str,
    now_epoch_s: i64,
) -> Result<Option<InstallState>, StoreError> {
    table.take_unexpired(&keys::shopify_install_state_key(nonce), now_epoch_s).await
}
