//! Creates in the emulator what `template.yaml` declares: the table (keys, GSIs, TTL) and
//! the buckets. Idempotent: what exists is left as it is.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;

use crate::InfraError;
use crate::template::{TableSpec, Template};

/// The names the local stack gives to the template's resources.
#[derive(Clone, Debug)]
pub struct LocalNames {
    pub table: String,
    /// `(logical id, bucket name)`.
    pub buckets: Vec<(String, String)>,
    /// `(logical id, queue name)`.
    pub queues: Vec<(String, String)>,
}

impl LocalNames {
    /// `prefix` keeps parallel test runs apart (`bestow-local`, `bestow-test-<n>`).
    pub fn new(template: &Template, prefix: &str) -> Self {
        let buckets = template
            .buckets()
            .into_iter()
            .map(|id| {
                let name = format!("{prefix}-{}", id.to_lowercase());
                (id, name)
            })
            .collect();
        Self {
            table: format!("{prefix}-table"),
            buckets,
            queues: template
                .queues()
                .into_iter()
                .map(|q| {
                    let name = format!("{prefix}-{}", q.logical_id.to_lowercase());
                    (q.logical_id, name)
                })
                .collect(),
        }
    }

    pub fn queue(&self, logical_id: &str) -> Option<&str> {
        self.queues.iter().find(|(id, _)| id == logical_id).map(|(_, name)| name.as_str())
    }

    pub fn bucket(&self, logical_id: &str) -> Option<&str> {
        self.buckets.iter().find(|(id, _)| id == logical_id).map(|(_, name)| name.as_str())
    }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, InfraError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| InfraError::Other(e.to_string()))
}

fn keys(hash: &str, range: Option<&str>) -> Result<Vec<KeySchemaElement>, InfraError> {
    let mut out = vec![key(hash, KeyType::Hash)?];
    if let Some(range) = range {
        out.push(key(range, KeyType::Range)?);
    }
    Ok(out)
}

pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str, spec: &TableSpec) -> Result<(), InfraError> {
    let other = |e: &dyn std::fmt::Display| InfraError::Other(e.to_string());
    let mut request = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for (attr, kind) in &spec.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| other(&e))?,
        );
    }
    request = request.set_key_schema(Some(keys(&spec.hash_key, spec.range_key.as_deref())?));
    for (index, hash, range) in &spec.global_indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(keys(hash, range.as_deref())?))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(|e| other(&e))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
            return Ok(());
        }
        Err(err) => {
            return Err(InfraError::Emulator(aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()));
        }
    }
    if let Some(ttl) = &spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(ttl).enabled(true).build().map_err(|e| other(&e))?,
            )
            .send()
            .await
            .map_err(|e| InfraError::Emulator(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
    }
    Ok(())
}

/// S3 against an emulator needs path-style URLs, or the bucket becomes a host name.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build())
}

pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str) -> Result<(), InfraError> {
    match client.create_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()) =>
        {
            Ok(())
        }
        Err(err) => Err(InfraError::Emulator(aws_sdk_s3::error::DisplayErrorContext(err).to_string())),
    }
}

/// What provisioning made, to wire the functions to it.
#[derive(Clone, Debug, Default)]
pub struct Provisioned {
    /// Queue logical id → queue URL.
    pub queue_urls: BTreeMap<String, String>,
}

impl Provisioned {
    /// `BESTOW_QUEUE_<TYPE>` for every registered job type whose worker's queue exists, as
    /// the template wires it (`!Ref <Queue>` gives the URL).
    pub fn queue_env(&self, template: &Template) -> BTreeMap<String, String> {
        bestow::jobs::registry::ALL
            .iter()
            .filter_map(|worker| {
                let source = template.queue_source(worker.function)?;
                let url = self.queue_urls.get(&source.queue_logical_id)?;
                Some((bestow::jobs::registry::queue_env_var(worker.job_type), url.clone()))
            })
            .collect()
    }
}

fn sqs_error(err: impl std::error::Error + 'static) -> InfraError {
    InfraError::Emulator(aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
}

/// Creates the template's queues, dead-letter queues first so the others can name them in
/// their redrive policy. `visibility_override` shortens every visibility timeout (the tests
/// use a second or two, so retries come back quickly).
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    template: &Template,
    names: &LocalNames,
    visibility_override: Option<i64>,
) -> Result<BTreeMap<String, String>, InfraError> {
    let mut specs = template.queues();
    specs.sort_by_key(|q| q.dead_letter.is_some());
    let mut urls = BTreeMap::new();
    let mut arns = BTreeMap::new();
    for spec in specs {
        let name = names
            .queue(&spec.logical_id)
            .ok_or_else(|| InfraError::Other(format!("no local name for {}", spec.logical_id)))?;
        let mut request = sqs.create_queue().queue_name(name);
        if let Some(visibility) = visibility_override.or(spec.visibility_timeout_s) {
            request = request.attributes(QueueAttributeName::VisibilityTimeout, visibility.to_string());
        }
        if let Some(retention) = spec.retention_s {
            request = request.attributes(QueueAttributeName::MessageRetentionPeriod, retention.to_string());
        }
        if let Some((dead_letter, max_receive)) = &spec.dead_letter {
            let arn =
                arns.get(dead_letter).ok_or_else(|| InfraError::Template(format!("{dead_letter} is not a queue")))?;
            let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max_receive.to_string() });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request.send().await.map_err(sqs_error)?.queue_url.unwrap_or_default();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_error)?;
        let arn =
            attributes.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().unwrap_or_default();
        arns.insert(spec.logical_id.clone(), arn);
        urls.insert(spec.logical_id, url);
    }
    Ok(urls)
}

/// Everything the template declares, under `names`.
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    template: &Template,
    names: &LocalNames,
    visibility_override: Option<i64>,
) -> Result<Provisioned, InfraError> {
    let spec = template.table("Table")?;
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table, &spec).await?;
    let s3 = s3_client(sdk);
    for (_, bucket) in &names.buckets {
        create_bucket(&s3, bucket).await?;
    }
    let queue_urls = create_queues(&aws_sdk_sqs::Client::new(sdk), template, names, visibility_override).await?;
    Ok(Provisioned { queue_urls })
}
