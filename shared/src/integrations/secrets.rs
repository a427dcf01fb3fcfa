//! Per-vendor credentials in Secrets Manager, one secret per vendor per integration, named
//! `<prefix>/vendors/<vendor>/<integration>`, read through a TTL cache.
//!
//! Secret material only ever lives in [`Redacted`] fields: their `Debug` prints
//! `[redacted]` and they have no `Display`, so neither logs nor error messages can carry them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::types::Tag;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app::SdkClients;
use crate::error::ApiError;
use crate::tenancy::TenantScope;

/// A secret string. Serialises transparently (it must reach Secrets Manager) but never
/// prints; no API response type contains one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one client that sends it to its third party.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A credential bundle of one integration; `NAME` is the last segment of the secret name.
pub trait VendorSecret: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;
}

/// A credential of the platform itself (not of a vendor), named `<prefix>/platform/<NAME>`,
/// e.g. the Shopify app's client secret. Read at its current version.
pub trait PlatformSecret: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secrets manager: {0}")]
    Sdk(String),
    #[error("secret {name} is not valid JSON of its kind")]
    Malformed { name: String },
}

impl From<SecretError> for ApiError {
    fn from(err: SecretError) -> Self {
        ApiError::internal(err)
    }
}

struct Cached {
    fetched: Instant,
    json: Arc<str>,
}

/// Where a vendor's credentials are, as its configuration item records them. Readers fetch
/// exactly this version, so the configuration item (written with a version condition) is
/// the one source of truth: a request that lost the race to write the configuration may
/// have written a secret version too, but nothing ever reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub version_id: String,
}

#[derive(Clone)]
pub struct SecretStore {
    clients: SdkClients,
    /// Built on first use (most functions never read a secret).
    client: Arc<OnceLock<Client>>,
    prefix: Arc<str>,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<(String, String), Cached>>>,
}

fn sdk_error(err: impl std::error::Error + 'static) -> SecretError {
    SecretError::Sdk(DisplayErrorContext(err).to_string())
}

impl SecretStore {
    pub fn new(clients: SdkClients, prefix: String, ttl: Duration) -> Self {
        Self { clients, client: Arc::default(), prefix: prefix.into(), ttl, cache: Arc::default() }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| self.clients.secrets())
    }

    /// The secret name for a vendor's integration; built only from a tenant scope.
    pub fn name_for<S: VendorSecret>(&self, scope: &TenantScope) -> String {
        format!("{}/vendors/{}/{}", self.prefix, scope.vendor_id(), S::NAME)
    }

    /// Reads the version of a vendor's credentials that its configuration names, from the
    /// cache while fresh (versions never change, the TTL only bounds memory and revocation).
    pub async fn get<S: VendorSecret>(&self, scope: &TenantScope, at: &SecretRef) -> Result<S, SecretError> {
        self.read(self.name_for::<S>(scope), Some(&at.version_id)).await
    }

    /// A secret's version (the current one when `None`) as JSON of its kind, from the cache
    /// while fresh.
    async fn read<T: DeserializeOwned>(&self, name: String, version_id: Option<&str>) -> Result<T, SecretError> {
        let key = (name.clone(), version_id.unwrap_or("AWSCURRENT").to_owned());
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            cache.get(&key).filter(|c| c.fetched.elapsed() < self.ttl).map(|c| Arc::clone(&c.json))
        };
        let json = match cached {
            Some(json) => json,
            None => {
                let out = self
                    .client()
                    .get_secret_value()
                    .secret_id(&name)
                    .set_version_id(version_id.map(str::to_owned))
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let json: Arc<str> =
                    out.secret_string.ok_or_else(|| SecretError::Malformed { name: name.clone() })?.into();
                let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                cache.insert(key, Cached { fetched: Instant::now(), json: Arc::clone(&json) });
                json
            }
        };
        serde_json::from_str(&json).map_err(|_| SecretError::Malformed { name })
    }

    pub fn platform_name<S: PlatformSecret>(&self) -> String {
        format!("{}/platform/{}", self.prefix, S::NAME)
    }

    /// Reads a platform secret's current version, from the cache while fresh (the TTL bounds
    /// how long a rotated secret's old value is still used).
    pub async fn platform<S: PlatformSecret>(&self) -> Result<S, SecretError> {
        self.read(self.platform_name::<S>(), None).await
    }

    /// Removes a vendor's credentials of one integration at once (no recovery window: a
    /// disconnected integration's token must stop existing). Absent already is fine.
    pub async fn delete<S: VendorSecret>(&self, scope: &TenantScope) -> Result<(), SecretError> {
        let name = self.name_for::<S>(scope);
        let deleted = self.client().delete_secret().secret_id(&name).force_delete_without_recovery(true).send().await;
        {
            let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            cache.retain(|(cached, _), _| *cached != name);
        }
        match deleted {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Writes a new version of a vendor's credentials (creating the secret the first time)
    /// and returns where it is; the caller records that in the vendor's configuration.
    pub async fn put<S: VendorSecret>(&self, scope: &TenantScope, value: &S) -> Result<SecretRef, SecretError> {
        let vendor = Tag::builder().key("bestow:vendor").value(scope.vendor_id().as_str()).build();
        self.write(self.name_for::<S>(scope), value, S::NAME, Some(vendor)).await
    }

    /// Writes a new version of a platform secret that Bestow itself rotates (the Xero token
    /// pair); the caller records the version it wrote where readers look for it.
    pub async fn put_platform<S: PlatformSecret>(&self, value: &S) -> Result<SecretRef, SecretError> {
        self.write(self.platform_name::<S>(), value, S::NAME, None).await
    }

    /// A platform secret's current version and its id, read from Secrets Manager now (not the
    /// cache): for the one reader that must see a version written since (the Xero refresh).
    pub async fn platform_latest<S: PlatformSecret>(&self) -> Result<(S, SecretRef), SecretError> {
        let name = self.platform_name::<S>();
        let out = self.client().get_secret_value().secret_id(&name).send().await.map_err(sdk_error)?;
        let (Some(json), Some(version_id)) = (out.secret_string, out.version_id) else {
            return Err(SecretError::Malformed { name });
        };
        let value = serde_json::from_str(&json).map_err(|_| SecretError::Malformed { name })?;
        Ok((value, SecretRef { version_id }))
    }

    /// A platform secret at the version a record names (cached: versions never change).
    pub async fn platform_at<S: PlatformSecret>(&self, at: &SecretRef) -> Result<S, SecretError> {
        self.read(self.platform_name::<S>(), Some(&at.version_id)).await
    }

    async fn write<S: Serialize>(
        &self,
        name: String,
        value: &S,
        integration: &str,
        vendor: Option<Tag>,
    ) -> Result<SecretRef, SecretError> {
        let json = serde_json::to_string(value).map_err(|_| SecretError::Malformed { name: name.clone() })?;
        let version_id = match self.put_version(&name, &json).await? {
            Some(version) => version,
            None => match self.create(&name, &json, integration, vendor).await? {
                Some(version) => version,
                // Created concurrently by another request: write our version on top.
                None => {
                    self.put_version(&name, &json).await?.ok_or_else(|| SecretError::Sdk(format!("{name} vanished")))?
                }
            },
        };
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.insert((name, version_id.clone()), Cached { fetched: Instant::now(), json: json.into() });
        Ok(SecretRef { version_id })
    }

    /// `None` when the secret does not exist yet.
    async fn put_version(&self, name: &str, json: &str) -> Result<Option<String>, SecretError> {
        match self.client().put_secret_value().secret_id(name).secret_string(json).send().await {
            Ok(out) => out.version_id.map(Some).ok_or_else(|| SecretError::Sdk(format!("{name}: no version id"))),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// `None` when another request created it first.
    async fn create(
        &self,
        name: &str,
        json: &str,
        integration: &str,
        vendor: Option<Tag>,
    ) -> Result<Option<String>, SecretError> {
        let created = self
            .client()
            .create_secret()
            .name(name)
            .secret_string(json)
            .set_tags(Some(
                vendor
                    .into_iter()
                    .chain([Tag::builder().key("bestow:integration").value(integration).build()])
                    .collect(),
            ))
            .send()
            .await;
        match created {
            Ok(out) => out.version_id.map(Some).ok_or_else(|| SecretError::Sdk(format!("{name}: no version id"))),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_exists_exception()) => Ok(None),
            Err(err) => Err(sdk_error(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_never_prints_its_value() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Creds {
            user: String,
            password: Redacted,
        }
        let shown = format!("{:?}", Creds { user: "u".into(), password: Redacted::new("hunter2") });
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(serde_json::to_string(&Redacted::new("x")).unwrap(), "\"x\"");
    }
}
