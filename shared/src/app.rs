//! The wiring built once per cold start and shared by every invocation of a function.

use std::sync::{Arc, OnceLock};

use crate::config::{Config, ConfigError};
use crate::integrations::secrets::SecretStore;
use crate::jobs::Dispatcher;
use crate::store::Table;
use crate::store::counter::CallCounter;

/// Everything a handler may use, built once outside the handler. Cloning is cheap (the SDK
/// clients are reference-counted).
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub table: Table,
    pub secrets: SecretStore,
    pub jobs: Dispatcher,
    /// Presigns uploads and checks them (product images). Building it makes no call.
    pub s3: aws_sdk_s3::Client,
    /// The HTTPS client of the third-party integrations (Stripe), built on first use: most
    /// functions never call out, and building it loads the TLS roots.
    http: Arc<OnceLock<reqwest::Client>>,
}

impl App {
    /// Reads the environment and the standard AWS configuration chain (which honours
    /// `AWS_ENDPOINT_URL` for the local emulator). No network call happens here.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(Self::from_parts(config, &sdk))
    }

    pub fn from_parts(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        Self::build(config, sdk, None)
    }

    /// With every AWS call counted by `counter` (tests and benchmarks).
    pub fn counted(config: Config, sdk: &aws_config::SdkConfig, counter: &CallCounter) -> Self {
        Self::build(config, sdk, Some(counter))
    }

    fn build(config: Config, sdk: &aws_config::SdkConfig, counter: Option<&CallCounter>) -> Self {
        let mut dynamo = aws_sdk_dynamodb::config::Builder::from(sdk);
        let mut secrets = aws_sdk_secretsmanager::config::Builder::from(sdk);
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        // Against an emulator the bucket cannot be a host name: path-style URLs.
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk).force_path_style(config.endpoint_url.is_some());
        if let Some(counter) = counter {
            dynamo = dynamo.interceptor(counter.clone());
            secrets = secrets.interceptor(counter.clone());
            sqs = sqs.interceptor(counter.clone());
            s3 = s3.interceptor(counter.clone());
        }
        let dynamo = aws_sdk_dynamodb::Client::from_conf(dynamo.build());
        let secrets = aws_sdk_secretsmanager::Client::from_conf(secrets.build());
        let jobs = Dispatcher::new(aws_sdk_sqs::Client::from_conf(sqs.build()), config.queues.clone());
        Self {
            table: Table::new(dynamo, config.table_name.clone()),
            secrets: SecretStore::new(secrets, config.secrets_prefix.clone(), config.secret_cache_ttl),
            jobs,
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            config: Arc::new(config),
            http: Arc::new(OnceLock::new()),
        }
    }

    /// The shared connection pool for third-party APIs (clones share it).
    pub fn http(&self) -> reqwest::Client {
        self.http.get_or_init(reqwest::Client::new).clone()
    }
}
