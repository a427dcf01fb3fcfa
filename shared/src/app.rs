//! The wiring built once per cold start and shared by every invocation of a function.

use std::sync::{Arc, OnceLock};

use crate::config::{Config, ConfigError};
use crate::integrations::secrets::SecretStore;
use crate::jobs::Dispatcher;
use crate::store::Table;
use crate::store::counter::CallCounter;

/// The SDK configuration of a function on Lambda: the region and the role's session credentials
/// from the variables Lambda sets, and `AWS_ENDPOINT_URL` (the local emulator). Not the
/// default chain: its profile files, IMDS, SSO and STS providers cost init time and link
/// about a megabyte into every function, and Lambda never needs them.
fn lambda_sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::{Region, SharedCredentialsProvider};
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let mut sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(std::env::var("AWS_REGION").ok().map(Region::new))
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    if let Some(client) = aws_https_client() {
        sdk = sdk.http_client(client);
    }
    if let Some(endpoint) = endpoint_url {
        sdk = sdk.endpoint_url(endpoint);
    }
    sdk.build()
}

/// The roots AWS's service endpoints chain to (Amazon Trust Services: Amazon Root CA 1 to 4,
/// and the Starfield Services G2 root that cross-signs them).
const AWS_TRUST_ROOTS: &[u8] = include_bytes!("aws-trust-roots.pem");

/// The SDK's HTTPS client (hyper 1, rustls on aws-lc, as the default one) trusting the AWS roots
/// only. The default client parses every root of the OS store when a client is built: three
/// quarters of a function's init (about 10 ms on this machine), to call only AWS.
fn aws_https_client() -> Option<aws_sdk_dynamodb::config::SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_TRUST_ROOTS);
    let context = TlsContext::builder().with_trust_store(trust).build().ok()?;
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = aws_smithy_http_client::ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .tls_context(context.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.build()
    });
    Some(client)
}

/// Builds the SDK clients of one function from its configuration, each when first used: a
/// function that never calls a service neither builds that client at init nor links its
/// code (each build is reached only through the accessor that needs it).
#[derive(Clone)]
pub struct SdkClients {
    sdk: Arc<aws_config::SdkConfig>,
    counter: Option<CallCounter>,
    /// Against an emulator the bucket cannot be a host name: path-style URLs.
    path_style: bool,
}

impl SdkClients {
    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&*self.sdk);
        if let Some(counter) = &self.counter {
            builder = builder.interceptor(counter.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }

    pub(crate) fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(&*self.sdk);
        if let Some(counter) = &self.counter {
            builder = builder.interceptor(counter.clone());
        }
        aws_sdk_secretsmanager::Client::from_conf(builder.build())
    }

    pub(crate) fn sqs(&self) -> aws_sdk_sqs::Client {
        let mut builder = aws_sdk_sqs::config::Builder::from(&*self.sdk);
        if let Some(counter) = &self.counter {
            builder = builder.interceptor(counter.clone());
        }
        aws_sdk_sqs::Client::from_conf(builder.build())
    }

    fn s3(&self) -> aws_sdk_s3::Client {
        let mut builder = aws_sdk_s3::config::Builder::from(&*self.sdk).force_path_style(self.path_style);
        if let Some(counter) = &self.counter {
            builder = builder.interceptor(counter.clone());
        }
        aws_sdk_s3::Client::from_conf(builder.build())
    }
}

/// Everything a handler may use, built once outside the handler. Cloning is cheap (the SDK
/// clients are reference-counted). DynamoDB's client is built at once (nearly every function
/// reads the table); Secrets Manager's, SQS's and S3's on first use.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub table: Table,
    pub secrets: SecretStore,
    pub jobs: Dispatcher,
    clients: SdkClients,
    /// Presigns uploads and checks them (product images), stores documents.
    s3: Arc<OnceLock<aws_sdk_s3::Client>>,
    /// The HTTPS client of the third-party integrations (Stripe), built on first use: most
    /// functions never call out, and building it loads the TLS roots.
    http: Arc<OnceLock<reqwest::Client>>,
}

impl App {
    /// A deployed function's wiring, from the environment Lambda sets. No network call and no
    /// file read happens here.
    pub fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let sdk = lambda_sdk_config(config.endpoint_url.as_deref());
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
        let clients = SdkClients {
            sdk: Arc::new(sdk.clone()),
            counter: counter.cloned(),
            path_style: config.endpoint_url.is_some(),
        };
        Self {
            table: Table::new(clients.dynamodb(), config.table_name.clone()),
            secrets: SecretStore::new(clients.clone(), config.secrets_prefix.clone(), config.secret_cache_ttl),
            jobs: Dispatcher::new(clients.clone(), config.queues.clone()),
            clients,
            s3: Arc::new(OnceLock::new()),
            config: Arc::new(config),
            http: Arc::new(OnceLock::new()),
        }
    }

    /// The S3 client (clones share it), built on first use.
    pub fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3.get_or_init(|| self.clients.s3())
    }

    /// The shared connection pool for third-party APIs (clones share it).
    pub fn http(&self) -> reqwest::Client {
        self.http.get_or_init(reqwest::Client::new).clone()
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    #[test]
    fn the_aws_trust_roots_are_five_whole_certificates() {
        let pem = std::str::from_utf8(super::AWS_TRUST_ROOTS).unwrap();
        let bodies: Vec<&str> = pem
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|c| c.split("-----END CERTIFICATE-----").next().unwrap())
            .collect();
        assert_eq!(bodies.len(), 5);
        for body in bodies {
            let der: String = body.split_whitespace().collect();
            let der = base64::engine::general_purpose::STANDARD.decode(der).unwrap();
            assert_eq!(der[0], 0x30, "a DER SEQUENCE");
        }
        assert!(super::aws_https_client().is_some());
    }
}
