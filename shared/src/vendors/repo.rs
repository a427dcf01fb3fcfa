//! DynamoDB access for vendors. `VendorRepo` is tenant-scoped: it can only be built from a
//! `TenantScope` and every key comes from it. `VendorDirectory` reads the platform's list and
//! needs a `PlatformScope`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::model::{ShippingRules, SmtpSettings, StorageSettings, StripeSettings, Vendor, VendorSummary};
use crate::store::keys::{self, sk};
use crate::store::{Condition, Cursor, QueryPage, StoreError, Table, Versioned, decode, encode};
use crate::tenancy::{PlatformScope, TenantScope};

/// A configuration document stored as one item in the vendor's partition.
pub trait ConfigItem: Serialize + DeserializeOwned {
    const SK: &'static str;
    const ENTITY: &'static str;
}

impl ConfigItem for ShippingRules {
    const SK: &'static str = sk::SHIPPING;
    const ENTITY: &'static str = "shipping_rules";
}
impl ConfigItem for SmtpSettings {
    const SK: &'static str = sk::SMTP;
    const ENTITY: &'static str = "smtp_settings";
}
impl ConfigItem for StripeSettings {
    const SK: &'static str = sk::STRIPE;
    const ENTITY: &'static str = "stripe_settings";
}
impl ConfigItem for StorageSettings {
    const SK: &'static str = sk::STORAGE;
    const ENTITY: &'static str = "storage_settings";
}

const PROFILE_ENTITY: &str = "vendor";
const DIRECTORY_ENTITY: &str = "vendor_directory_entry";

tokio::task_local! {
    /// The profile the request's write guard read, so the handler does not read it again.
    /// Cleared when the profile is written.
    static REQUEST_PROFILE: std::cell::RefCell<Option<Versioned<Vendor>>>;
}

/// Runs one request's handler with the vendor profile its guard already read.
pub async fn with_request_profile<F: std::future::Future>(profile: Versioned<Vendor>, handler: F) -> F::Output {
    REQUEST_PROFILE.scope(std::cell::RefCell::new(Some(profile)), handler).await
}

pub struct VendorRepo<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

impl<'a> VendorRepo<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    pub async fn profile(&self) -> Result<Option<Versioned<Vendor>>, StoreError> {
        let read = REQUEST_PROFILE
            .try_with(|memo| memo.borrow().as_ref().filter(|p| p.value.id == self.scope.vendor_id().as_str()).cloned());
        if let Ok(Some(profile)) = read {
            return Ok(Some(profile));
        }
        let item = self.table.get(&keys::tenant_key(self.scope, sk::PROFILE)).await?;
        item.map(decode).transpose()
    }

    /// Writes the profile and its directory entry together. `expected` is the version read
    /// (`None` to create). Returns the new version.
    pub async fn save_profile(&self, vendor: &Vendor, expected: Option<u64>) -> Result<u64, StoreError> {
        let _ = REQUEST_PROFILE.try_with(|memo| memo.borrow_mut().take());
        let version = expected.map_or(1, |v| v + 1);
        let condition = expected.map_or(Condition::NotExists, Condition::VersionIs);
        let vendor_id = Some(self.scope.vendor_id());
        let profile = encode(&keys::tenant_key(self.scope, sk::PROFILE), PROFILE_ENTITY, vendor_id, version, vendor)?;
        let entry =
            encode(&keys::vendor_directory_entry(self.scope), DIRECTORY_ENTITY, None, version, &vendor.summary())?;
        let entry_condition = if expected.is_none() { Condition::NotExists } else { Condition::Always };
        self.table
            .transact(vec![
                self.table.transact_put(profile, condition)?,
                self.table.transact_put(entry, entry_condition)?,
            ])
            .await?;
        Ok(version)
    }

    pub async fn config<T: ConfigItem>(&self) -> Result<Option<Versioned<T>>, StoreError> {
        let item = self.table.get(&keys::tenant_key(self.scope, T::SK)).await?;
        item.map(decode).transpose()
    }

    /// Creates (`expected = None`) or replaces the version read. Returns the new version.
    pub async fn put_config<T: ConfigItem>(&self, value: &T, expected: Option<u64>) -> Result<u64, StoreError> {
        let version = expected.map_or(1, |v| v + 1);
        let item =
            encode(&keys::tenant_key(self.scope, T::SK), T::ENTITY, Some(self.scope.vendor_id()), version, value)?;
        self.table.put(item, expected.map_or(Condition::NotExists, Condition::VersionIs)).await?;
        Ok(version)
    }
}

pub struct VendorDirectory<'a> {
    table: &'a Table,
    scope: &'a PlatformScope,
}

impl<'a> VendorDirectory<'a> {
    pub fn new(table: &'a Table, scope: &'a PlatformScope) -> Self {
        Self { table, scope }
    }

    /// One page of vendors, oldest first (ids sort by creation time when generated).
    pub async fn list(
        &self,
        limit: i32,
        cursor: Option<&Cursor>,
    ) -> Result<(Vec<VendorSummary>, Option<Cursor>), StoreError> {
        let (entities, next) = self
            .table
            .query_entities::<VendorSummary>(QueryPage {
                index: None,
                partition: keys::vendor_directory_partition(self.scope),
                sort_prefix: Some(keys::VENDOR_DIRECTORY_SK_PREFIX.to_owned()),
                limit,
                cursor,
                descending: false,
                filter: None,
            })
            .await?;
        Ok((entities.into_iter().map(|v| v.value).collect(), next))
    }
}
