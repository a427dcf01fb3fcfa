//! One local stack: provisioned from the template, with the `App` every handler and worker
//! runs on wired to it exactly as the template wires the deployed functions.

use bestow::App;
use bestow::config::Config;
use tokio::task::JoinHandle;

use crate::InfraError;
use crate::provision::{LocalNames, Provisioned, provision};
use crate::template::Template;

pub struct StackOptions {
    /// Names every resource (`bestow-local`, `bestow-test-<n>`).
    pub prefix: String,
    pub stage: String,
    /// Secrets Manager prefix; `bestow/<stage>` when `None`.
    pub secrets_prefix: Option<String>,
    /// Shorter visibility timeouts for tests, so retries come back in seconds.
    pub visibility_override: Option<i64>,
    /// Counts every AWS call the stack's functions make (benchmarks, round-trip tests).
    pub counter: Option<bestow::store::counter::CallCounter>,
    /// Where the functions reach Stripe (the local Stripe fake).
    pub stripe_api_base: Option<String>,
    /// Shopify, played locally: the fake's root and the app's credentials (stored as the
    /// platform secret, as operators store the real app's).
    pub shopify: Option<LocalShopify>,
    /// Xero, played locally: the fake's root (login, identity and API alike) and the platform
    /// app's credentials (stored as the platform secret, as operators store the real app's).
    pub xero: Option<LocalXero>,
    /// The platform's own Stripe account for vendor plans (on the same Stripe fake): its key,
    /// webhook secret and the price of each plan (`starter=price_…,…`).
    pub billing: Option<LocalBilling>,
    /// Where the API is served (`http://127.0.0.1:<port>`): the Shopify and Xero redirect and
    /// webhook URLs point there.
    pub public_base_url: Option<String>,
}

pub struct LocalBilling {
    pub secret_key: String,
    pub webhook_secret: String,
    pub plan_prices: String,
}

pub struct LocalXero {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    pub webhook_key: String,
}

pub struct LocalShopify {
    pub api_base: String,
    pub api_key: String,
    pub api_secret: String,
}

pub struct LocalStack {
    pub template: Template,
    pub names: LocalNames,
    pub provisioned: Provisioned,
    pub sdk: aws_config::SdkConfig,
    pub app: App,
}

impl LocalStack {
    /// Provisions everything in the emulator named by `AWS_ENDPOINT_URL` and builds the `App`.
    pub async fn provision(options: StackOptions) -> Result<Self, InfraError> {
        if std::env::var("AWS_ENDPOINT_URL").is_err() {
            return Err(InfraError::Other(
                "AWS_ENDPOINT_URL is not set: the local stack only runs against an emulator".into(),
            ));
        }
        let template = Template::load_default()?;
        let names = LocalNames::new(&template, &options.prefix);
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let provisioned = provision(&sdk, &template, &names, options.visibility_override).await?;
        let queue_env = provisioned.queue_env(&template);
        let asset_env = asset_env(&names);
        let table = names.table.clone();
        let config = Config::from_lookup(|name| match name {
            "BESTOW_TABLE" => Some(table.clone()),
            "BESTOW_STAGE" => Some(options.stage.clone()),
            "BESTOW_SECRETS_PREFIX" => options.secrets_prefix.clone(),
            "BESTOW_STRIPE_API_BASE" => options.stripe_api_base.clone().or_else(|| std::env::var(name).ok()),
            "BESTOW_SHOPIFY_API_BASE" => options.shopify.as_ref().map(|s| s.api_base.clone()),
            "BESTOW_SHOPIFY_CALLBACK_URL" => options.public_base_url.as_ref().map(|b| format!("{b}/shopify/callback")),
            "BESTOW_SHOPIFY_WEBHOOK_URL" => options.public_base_url.as_ref().map(|b| format!("{b}/webhooks/shopify")),
            "BESTOW_XERO_LOGIN_BASE" | "BESTOW_XERO_IDENTITY_BASE" | "BESTOW_XERO_API_BASE" => {
                options.xero.as_ref().map(|x| x.base.clone())
            }
            "BESTOW_PLAN_PRICES" => options.billing.as_ref().map(|b| b.plan_prices.clone()),
            "BESTOW_XERO_CALLBACK_URL" => options.public_base_url.as_ref().map(|b| format!("{b}/xero/callback")),
            other => {
                queue_env.get(other).or_else(|| asset_env.get(other)).cloned().or_else(|| std::env::var(other).ok())
            }
        })
        .map_err(|e| InfraError::Other(e.to_string()))?;
        if let Some(shopify) = &options.shopify {
            let name = format!("{}/platform/shopify-app", config.secrets_prefix);
            let value = serde_json::json!({ "api_key": shopify.api_key, "api_secret": shopify.api_secret }).to_string();
            put_secret(&aws_sdk_secretsmanager::Client::new(&sdk), &name, &value).await?;
        }
        if let Some(xero) = &options.xero {
            let name = format!("{}/platform/xero-app", config.secrets_prefix);
            let value = serde_json::json!({
                "client_id": xero.client_id, "client_secret": xero.client_secret, "webhook_key": xero.webhook_key,
            })
            .to_string();
            put_secret(&aws_sdk_secretsmanager::Client::new(&sdk), &name, &value).await?;
        }
        if let Some(billing) = &options.billing {
            let name = format!("{}/platform/stripe-billing", config.secrets_prefix);
            let value =
                serde_json::json!({ "secret_key": billing.secret_key, "webhook_secret": billing.webhook_secret })
                    .to_string();
            put_secret(&aws_sdk_secretsmanager::Client::new(&sdk), &name, &value).await?;
        }
        let app = match &options.counter {
            Some(counter) => App::counted(config, &sdk, counter),
            None => App::from_parts(config, &sdk),
        };
        Ok(Self { template, names, provisioned, sdk, app })
    }

    /// The environment a deployed function of this stack would have (for real binaries).
    pub fn function_env(&self) -> std::collections::BTreeMap<String, String> {
        let mut env = self.provisioned.queue_env(&self.template);
        env.insert("BESTOW_TABLE".into(), self.names.table.clone());
        env.insert("BESTOW_STAGE".into(), self.app.config.stage.clone());
        env.insert("BESTOW_SECRETS_PREFIX".into(), self.app.config.secrets_prefix.clone());
        env.insert("BESTOW_STRIPE_API_BASE".into(), self.app.config.stripe_api_base.clone());
        let config = &self.app.config;
        for (name, value) in [
            ("BESTOW_SHOPIFY_API_BASE", &config.shopify_api_base),
            ("BESTOW_SHOPIFY_CALLBACK_URL", &config.shopify_callback_url),
            ("BESTOW_SHOPIFY_WEBHOOK_URL", &config.shopify_webhook_url),
            ("BESTOW_XERO_CALLBACK_URL", &config.xero_callback_url),
        ] {
            if let Some(value) = value {
                env.insert(name.into(), value.clone());
            }
        }
        let prices: Vec<String> = config.plan_prices.iter().map(|(plan, price)| format!("{plan}={price}")).collect();
        env.insert("BESTOW_PLAN_PRICES".into(), prices.join(","));
        env.insert("BESTOW_XERO_LOGIN_BASE".into(), config.xero.login.clone());
        env.insert("BESTOW_XERO_IDENTITY_BASE".into(), config.xero.identity.clone());
        env.insert("BESTOW_XERO_API_BASE".into(), config.xero.api.clone());
        env.extend(asset_env(&self.names));
        env
    }

    /// Runs every scheduled function every `period` (EventBridge Scheduler's part), first
    /// after one period.
    pub fn spawn_schedules(&self, period: std::time::Duration) -> Vec<JoinHandle<()>> {
        bestow::jobs::schedule::ALL
            .iter()
            .map(|schedule| {
                let app = self.app.clone();
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    loop {
                        ticks.tick().await;
                        let now = time::OffsetDateTime::now_utc().unix_timestamp();
                        match (schedule.run)(app.clone(), now).await {
                            Ok(summary) => tracing::info!(function = schedule.function, %summary, "schedule done"),
                            Err(error) => tracing::error!(function = schedule.function, %error, "schedule failed"),
                        }
                    }
                })
            })
            .collect()
    }

    /// Starts a poller per worker queue (the SQS event sources).
    pub fn spawn_pollers(&self) -> Vec<JoinHandle<()>> {
        let workers = crate::poller::workers(&self.template, &self.provisioned.queue_urls);
        crate::poller::spawn(&self.app, &aws_sdk_sqs::Client::new(&self.sdk), workers)
    }
}

/// Creates or updates a secret (the platform's own, which the template leaves to operators).
async fn put_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> Result<(), InfraError> {
    let updated = client.put_secret_value().secret_id(name).secret_string(value).send().await;
    match updated {
        Ok(_) => Ok(()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            client.create_secret().name(name).secret_string(value).send().await.map(|_| ()).map_err(|e| {
                InfraError::Other(format!("creating {name}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)))
            })
        }
        Err(err) => Err(InfraError::Other(format!(
            "writing {name}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(err)
        ))),
    }
}

/// The buckets: documents, assets, and the emulator serving assets as the CDN would (path-style).
fn asset_env(names: &LocalNames) -> std::collections::BTreeMap<String, String> {
    let mut env = std::collections::BTreeMap::new();
    if let Some(bucket) = names.bucket("DocumentsBucket") {
        env.insert("BESTOW_DOCUMENTS_BUCKET".to_owned(), bucket.to_owned());
    }
    if let Some(bucket) = names.bucket("AssetsBucket") {
        env.insert("BESTOW_ASSETS_BUCKET".to_owned(), bucket.to_owned());
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            env.insert("BESTOW_ASSET_BASE_URL".to_owned(), format!("{}/{bucket}", endpoint.trim_end_matches('/')));
        }
    }
    env
}
