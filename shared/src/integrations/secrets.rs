//! Per-vendor credentials in Secrets Manager, one secret per vendor per integration, named
//! `<prefix>/vendors/<vendor>/<integration>`, read through a TTL cache.
//!
//! Secret material only ever lives in [`Redacted`] fields: their `Debug` prints
//! `[redacted]` and they have no `Display`, so neither logs nor error messages can carry them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use aws_sdk_secretsmanager::types::Tag;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    json: Option<Arc<str>>,
}

#[derive(Clone)]
pub struct SecretStore {
    client: Client,
    prefix: Arc<str>,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl SecretStore {
    pub fn new(client: Client, prefix: String, ttl: Duration) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            ttl,
            cache: Arc::default(),
        }
    }

    /// The secret name for a vendor's integration; built only from a tenant scope.
    pub fn name_for<S: VendorSecret>(&self, scope: &TenantScope) -> String {
        format!("{}/vendors/{}/{}", self.prefix, scope.vendor_id(), S::NAME)
    }

    /// Reads a vendor's credentials, from the cache while it is fresh. `None` when the vendor
    /// has not configured this integration.
    pub async fn get<S: VendorSecret>(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<S>, SecretError> {
        let name = self.name_for::<S>(scope);
        let cached = self.cached(&name);
        let json = match cached {
            Some(json) => json,
            None => {
                let fetched = self.fetch(&name).await?;
                self.remember(&name, fetched.clone());
                fetched
            }
        };
        json.map(|j| {
            serde_json::from_str(&j).map_err(|_| SecretError::Malformed { name: name.clone() })
        })
        .transpose()
    }

    /// Stores a vendor's credentials (creating the secret the first time) and refreshes the
    /// cache, so this instance never serves the old value.
    pub async fn put<S: VendorSecret>(
        &self,
        scope: &TenantScope,
        value: &S,
    ) -> Result<(), SecretError> {
        let name = self.name_for::<S>(scope);
        let json = serde_json::to_string(value)
            .map_err(|_| SecretError::Malformed { name: name.clone() })?;
        let updated = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(&json)
            .send()
            .await;
        match updated {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.client
                    .create_secret()
                    .name(&name)
                    .secret_string(&json)
                    .tags(
                        Tag::builder()
                            .key("bestow:vendor")
                            .value(scope.vendor_id().as_str())
                            .build(),
                    )
                    .tags(
                        Tag::builder()
                            .key("bestow:integration")
                            .value(S::NAME)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| SecretError::Sdk(DisplayErrorContext(e).to_string()))?;
            }
            Err(err) => return Err(SecretError::Sdk(DisplayErrorContext(err).to_string())),
        }
        self.remember(&name, Some(json.into()));
        Ok(())
    }

    fn cached(&self, name: &str) -> Option<Option<Arc<str>>> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .get(name)
            .filter(|c| c.fetched.elapsed() < self.ttl)
            .map(|c| c.json.clone())
    }

    fn remember(&self, name: &str, json: Option<Arc<str>>) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.insert(
            name.to_owned(),
            Cached {
                fetched: Instant::now(),
                json,
            },
        );
    }

    async fn fetch(&self, name: &str) -> Result<Option<Arc<str>>, SecretError> {
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => Ok(out.secret_string.map(Arc::from)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(SecretError::Sdk(DisplayErrorContext(err).to_string())),
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
        let shown = format!(
            "{:?}",
            Creds {
                user: "u".into(),
                password: Redacted::new("hunter2")
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
        assert_eq!(serde_json::to_string(&Redacted::new("x")).unwrap(), "\"x\"");
    }
}
