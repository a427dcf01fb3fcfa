//! Shopify: the shop-domain rule, the OAuth install (authorize URL, code exchange), the two
//! signature checks and the GraphQL Admin API client. No other module builds a Shopify request
//! or sees a Shopify token.
//!
//! API: the GraphQL Admin API, version [`API_VERSION`]. The REST Admin API is legacy for new
//! apps (Shopify requires GraphQL for public apps since April 2025), and GraphQL reads a
//! product with its options and variants in one call at a known cost.

pub mod client;
pub mod operations;
pub mod signature;

use serde::{Deserialize, Serialize};

use crate::integrations::secrets::Redacted;

pub use client::{ShopifyClient, ShopifyError};
pub use signature::{query_is_signed, query_signature, webhook_is_signed, webhook_signature};

/// Pinned so that Shopify's quarterly changes reach Bestow only when a person moves it; 2026-10
/// is the newest stable version and is supported until October 2027.
pub const API_VERSION: &str = "2026-10";

/// Access scopes of the install: products and inventory to mirror, orders to create the gift
/// orders that decrement stock and to hear of their fulfilment.
pub const SCOPES: &str = "read_products,read_inventory,write_orders,read_fulfillments";

/// A shop's permanent domain, `<name>.myshopify.com`: the only form an install accepts, so a
/// redirect or a token exchange can never be aimed at another host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShopDomain(String);

impl ShopDomain {
    pub fn parse(raw: &str) -> Option<Self> {
        let domain = raw.trim().to_ascii_lowercase();
        let name = domain.strip_suffix(".myshopify.com")?;
        let valid = !name.is_empty()
            && name.len() <= 60
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        valid.then_some(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ShopDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The platform's Shopify app (one for all vendors): its client id and secret, stored as a
/// platform secret. The secret signs webhooks and redirects and authenticates code exchanges.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShopifyApp {
    pub api_key: String,
    pub api_secret: Redacted,
}

impl crate::integrations::secrets::PlatformSecret for ShopifyApp {
    const NAME: &'static str = "shopify-app";
}

/// A shop's offline access token, stored as the vendor's `shopify` secret. Public apps must
/// use expiring offline tokens (one hour, with a refresh token that each refresh replaces)
/// from January 2027, so the install asks for one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShopifyCredentials {
    pub shop: ShopDomain,
    pub access_token: Redacted,
    pub scope: String,
    /// Epoch seconds; `None` for a non-expiring token.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<Redacted>,
}

/// A token this close to its expiry is refreshed before use (a sync page must not outlive it).
pub const REFRESH_MARGIN_SECONDS: i64 = 5 * 60;

impl ShopifyCredentials {
    pub fn needs_refresh(&self, now_epoch_s: i64) -> bool {
        self.refresh_token.is_some() && self.expires_at.is_some_and(|at| at - now_epoch_s < REFRESH_MARGIN_SECONDS)
    }
}

impl crate::integrations::secrets::VendorSecret for ShopifyCredentials {
    const NAME: &'static str = "shopify";
}

/// Where a shop's endpoints are: `https://<shop>`, or `<base>/<shop>` against a local fake.
pub fn shop_base(api_base: Option<&str>, shop: &ShopDomain) -> String {
    match api_base {
        Some(base) => format!("{}/{shop}", base.trim_end_matches('/')),
        None => format!("https://{shop}"),
    }
}

/// The consent page the vendor's owner is sent to. No `grant_options[]`: an offline token,
/// which keeps working for the background jobs.
pub fn authorize_url(
    api_base: Option<&str>,
    shop: &ShopDomain,
    app: &ShopifyApp,
    redirect_uri: &str,
    state: &str,
) -> Result<String, ShopifyError> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/admin/oauth/authorize", shop_base(api_base, shop)),
        &[("client_id", app.api_key.as_str()), ("scope", SCOPES), ("redirect_uri", redirect_uri), ("state", state)],
    )
    .map_err(|e| ShopifyError::Rejected(format!("cannot build the authorize URL: {e}")))?;
    Ok(url.to_string())
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    scope: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
}

/// Exchanges an authorization code for the shop's expiring offline token (once: codes are
/// single use).
pub async fn exchange_code(
    http: &reqwest::Client,
    api_base: Option<&str>,
    shop: &ShopDomain,
    app: &ShopifyApp,
    code: &str,
) -> Result<ShopifyCredentials, ShopifyError> {
    let form = [
        ("client_id", app.api_key.as_str()),
        ("client_secret", app.api_secret.expose()),
        ("code", code),
        ("expiring", "1"),
    ];
    token_request(http, api_base, shop, &form, "the authorization code").await
}

/// Trades the refresh token for a new access token and a new refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    api_base: Option<&str>,
    app: &ShopifyApp,
    credentials: &ShopifyCredentials,
) -> Result<ShopifyCredentials, ShopifyError> {
    let refresh_token = credentials
        .refresh_token
        .as_ref()
        .ok_or_else(|| ShopifyError::Rejected("the token has no refresh token".into()))?;
    let form = [
        ("client_id", app.api_key.as_str()),
        ("client_secret", app.api_secret.expose()),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    token_request(http, api_base, &credentials.shop, &form, "the refresh token").await
}

async fn token_request(
    http: &reqwest::Client,
    api_base: Option<&str>,
    shop: &ShopDomain,
    form: &[(&str, &str)],
    what: &str,
) -> Result<ShopifyCredentials, ShopifyError> {
    let url = format!("{}/admin/oauth/access_token", shop_base(api_base, shop));
    let response = http
        .post(&url)
        .form(form)
        .timeout(client::REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(|e| ShopifyError::Unavailable(crate::integrations::without_url(&e, "<shopify>")))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| ShopifyError::Unavailable(crate::integrations::without_url(&e, "<shopify>")))?;
    match status {
        200..=299 => {
            let answer: TokenAnswer = serde_json::from_str(&text)
                .map_err(|e| ShopifyError::Unavailable(format!("unexpected token answer: {e}")))?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            Ok(ShopifyCredentials {
                shop: shop.clone(),
                access_token: Redacted::new(answer.access_token),
                scope: answer.scope,
                expires_at: answer.expires_in.map(|s| now + s),
                refresh_token: answer.refresh_token.map(Redacted::new),
            })
        }
        400..=499 => {
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error_description").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {status}"));
            Err(ShopifyError::Rejected(format!("Shopify refused {what}: {detail}")))
        }
        _ => Err(ShopifyError::Unavailable(format!("token request: HTTP {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_myshopify_domains_are_shops() {
        assert_eq!(ShopDomain::parse(" Acme-Gifts.myshopify.com ").unwrap().as_str(), "acme-gifts.myshopify.com");
        for bad in [
            "acme.com",
            "myshopify.com",
            ".myshopify.com",
            "acme.myshopify.com.evil.com",
            "evil.com/acme.myshopify.com",
            "a_b.myshopify.com",
            "-acme.myshopify.com",
            "acme.myshopify.com:8443",
            "user@acme.myshopify.com",
        ] {
            assert!(ShopDomain::parse(bad).is_none(), "{bad} accepted");
        }
    }

    #[test]
    fn authorize_url_asks_for_an_offline_token_with_the_scopes() {
        let shop = ShopDomain::parse("acme.myshopify.com").unwrap();
        let app = ShopifyApp { api_key: "key123".into(), api_secret: Redacted::new("secret") };
        let url = authorize_url(None, &shop, &app, "https://api.example/shopify/callback", "n0nce").unwrap();
        assert!(url.starts_with("https://acme.myshopify.com/admin/oauth/authorize?client_id=key123&scope="), "{url}");
        assert!(url.contains("redirect_uri=https%3A%2F%2Fapi.example%2Fshopify%2Fcallback"), "{url}");
        assert!(url.contains("state=n0nce") && !url.contains("grant_options") && !url.contains("secret"), "{url}");
    }
}
