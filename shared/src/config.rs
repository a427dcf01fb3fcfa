//! Configuration from the environment, read once per cold start.

use std::collections::BTreeMap;
use std::time::Duration;

/// What a function needs to know about where it runs. Every field comes from the environment
/// that `template.yaml` (deployed) or the local stack (`infra`) sets.
#[derive(Clone, Debug)]
pub struct Config {
    /// The single DynamoDB table (`BESTOW_TABLE`).
    pub table_name: String,
    /// Deployment stage (`BESTOW_STAGE`), part of every secret name.
    pub stage: String,
    /// Prefix of every Secrets Manager name (`BESTOW_SECRETS_PREFIX`, default `bestow/<stage>`).
    pub secrets_prefix: String,
    /// How long a credential read from Secrets Manager is reused (`BESTOW_SECRET_TTL_SECONDS`).
    pub secret_cache_ttl: Duration,
    /// Job type → queue URL, from `BESTOW_QUEUE_<TYPE>` for every registered job type; a
    /// function only has the queues it sends to.
    pub queues: BTreeMap<String, String>,
    /// Set only against a local emulator (`AWS_ENDPOINT_URL`): S3 then needs path-style URLs.
    pub endpoint_url: Option<String>,
    /// The bucket of product images (`BESTOW_ASSETS_BUCKET`), for the functions that upload.
    pub assets_bucket: Option<String>,
    /// The private bucket of documents (packing manifests), downloaded by presigned URL
    /// (`BESTOW_DOCUMENTS_BUCKET`).
    pub documents_bucket: Option<String>,
    /// Where the public reads images from (`BESTOW_ASSET_BASE_URL`, e.g. a CDN in front of the
    /// assets bucket); image URLs are `<base>/<key>`. Without it, no URLs are shown.
    pub asset_base_url: Option<String>,
    /// Stripe's API (`BESTOW_STRIPE_API_BASE`, default `https://api.stripe.com`; the local
    /// Stripe fake in tests and on the local stack).
    pub stripe_api_base: String,
    /// Where gift links point when a storefront has no host of its own
    /// (`BESTOW_GIFT_LINK_BASE`): links are `<base>/<storefront slug>/gifts/<code>`.
    pub gift_link_base: String,
    /// Where shops are reached (`BESTOW_SHOPIFY_API_BASE`): unset in AWS (each shop's own
    /// `https://<shop>`); the local Shopify fake's root locally, shops under `<base>/<shop>`.
    pub shopify_api_base: Option<String>,
    /// The OAuth redirect target registered with the Shopify app, the public
    /// `GET /shopify/callback` route (`BESTOW_SHOPIFY_CALLBACK_URL`).
    pub shopify_callback_url: Option<String>,
    /// The Shopify webhook function's URL (`BESTOW_SHOPIFY_WEBHOOK_URL`), which an install
    /// subscribes to the shop's topics.
    pub shopify_webhook_url: Option<String>,
    /// Xero's login, identity and API roots (`BESTOW_XERO_LOGIN_BASE`, `…_IDENTITY_BASE`,
    /// `…_API_BASE`; Xero's own by default, the local Xero fake locally).
    pub xero: crate::integrations::xero::XeroEndpoints,
    /// The OAuth redirect target registered with the platform's Xero app, the public
    /// `GET /xero/callback` route (`BESTOW_XERO_CALLBACK_URL`).
    pub xero_callback_url: Option<String>,
    /// The Xero revenue account the fee lines are booked to (`BESTOW_XERO_SALES_ACCOUNT`,
    /// default `200`, Xero's standard "Sales").
    pub xero_sales_account: String,
    /// The Xero bank or clearing account a payout's payment is recorded from
    /// (`BESTOW_XERO_PAYOUT_ACCOUNT`, default `090`, Xero's demo "Business Bank Account").
    pub xero_payout_account: String,
    /// Plan id → Stripe price id on the platform's own account (`BESTOW_PLAN_PRICES`,
    /// `starter=price_…,growth=price_…`). A plan without a price cannot be subscribed to.
    pub plan_prices: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(|v| v.trim_end_matches('/').to_owned())
}

fn plan_prices(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { name: "BESTOW_PLAN_PRICES", reason };
    let mut prices = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (plan, price) = pair.split_once('=').ok_or_else(|| invalid(format!("{pair} is not plan=price")))?;
        if crate::plans::model::plan(plan.trim()).is_none() {
            return Err(invalid(format!("{plan} is not a plan")));
        }
        prices.insert(plan.trim().to_owned(), price.trim().to_owned());
    }
    Ok(prices)
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let table_name = lookup("BESTOW_TABLE").ok_or(ConfigError::Missing("BESTOW_TABLE"))?;
        let stage = lookup("BESTOW_STAGE").unwrap_or_else(|| "dev".to_owned());
        let secrets_prefix = lookup("BESTOW_SECRETS_PREFIX").unwrap_or_else(|| format!("bestow/{stage}"));
        let ttl_seconds = match lookup("BESTOW_SECRET_TTL_SECONDS") {
            None => 300,
            Some(raw) => raw
                .parse::<u64>()
                .map_err(|e| ConfigError::Invalid { name: "BESTOW_SECRET_TTL_SECONDS", reason: e.to_string() })?,
        };
        let queues = crate::jobs::registry::JOB_TYPES
            .iter()
            .filter_map(|t| Some(((*t).to_owned(), lookup(&crate::jobs::registry::queue_env_var(t))?)))
            .collect();
        Ok(Self {
            queues,
            table_name,
            stage,
            secrets_prefix: secrets_prefix.trim_end_matches('/').to_owned(),
            secret_cache_ttl: Duration::from_secs(ttl_seconds),
            endpoint_url: lookup("AWS_ENDPOINT_URL").filter(|v| !v.is_empty()),
            assets_bucket: lookup("BESTOW_ASSETS_BUCKET").filter(|v| !v.is_empty()),
            documents_bucket: lookup("BESTOW_DOCUMENTS_BUCKET").filter(|v| !v.is_empty()),
            asset_base_url: lookup("BESTOW_ASSET_BASE_URL")
                .filter(|v| !v.is_empty())
                .map(|v| v.trim_end_matches('/').to_owned()),
            stripe_api_base: lookup("BESTOW_STRIPE_API_BASE")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "https://api.stripe.com".to_owned()),
            gift_link_base: lookup("BESTOW_GIFT_LINK_BASE")
                .filter(|v| !v.is_empty())
                .map(|v| v.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| "https://gifts.bestow.example".to_owned()),
            shopify_api_base: non_empty(lookup("BESTOW_SHOPIFY_API_BASE")),
            shopify_callback_url: non_empty(lookup("BESTOW_SHOPIFY_CALLBACK_URL")),
            shopify_webhook_url: non_empty(lookup("BESTOW_SHOPIFY_WEBHOOK_URL")),
            xero: {
                let defaults = crate::integrations::xero::XeroEndpoints::default();
                crate::integrations::xero::XeroEndpoints {
                    login: non_empty(lookup("BESTOW_XERO_LOGIN_BASE")).unwrap_or(defaults.login),
                    identity: non_empty(lookup("BESTOW_XERO_IDENTITY_BASE")).unwrap_or(defaults.identity),
                    api: non_empty(lookup("BESTOW_XERO_API_BASE")).unwrap_or(defaults.api),
                }
            },
            xero_callback_url: non_empty(lookup("BESTOW_XERO_CALLBACK_URL")),
            xero_sales_account: non_empty(lookup("BESTOW_XERO_SALES_ACCOUNT")).unwrap_or_else(|| "200".to_owned()),
            xero_payout_account: non_empty(lookup("BESTOW_XERO_PAYOUT_ACCOUNT")).unwrap_or_else(|| "090".to_owned()),
            plan_prices: plan_prices(lookup("BESTOW_PLAN_PRICES").as_deref().unwrap_or(""))?,
        })
    }
}
