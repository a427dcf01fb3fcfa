//! Creates in the emulator what `template.yaml` declares: the table (keys, GSIs, TTL) and
//! the buckets. Idempotent: what exists is left as it is.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use crate::InfraError;
use crate::template::{TableSpec, Template};

/// The names the local stack gives to the template's resources.
#[derive(Clone, Debug)]
pub struct LocalNames {
    pub table: String,
    /// `(logical id, bucket name)`.
    pub buckets: Vec<(String, String)>,
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
        }
    }

    pub fn bucket(&self, logical_id: &str) -> Option<&str> {
        self.buckets
            .iter()
            .find(|(id, _)| id == logical_id)
            .map(|(_, name)| name.as_str())
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

pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    spec: &TableSpec,
) -> Result<(), InfraError> {
    let other = |e: &dyn std::fmt::Display| InfraError::Other(e.to_string());
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
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
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| other(&e))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(());
        }
        Err(err) => {
            return Err(InfraError::Emulator(
                aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
            ));
        }
    }
    if let Some(ttl) = &spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()
                    .map_err(|e| other(&e))?,
            )
            .send()
            .await
            .map_err(|e| {
                InfraError::Emulator(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
            })?;
    }
    Ok(())
}

/// S3 against an emulator needs path-style URLs, or the bucket becomes a host name.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

pub async fn create_bucket(client: &aws_sdk_s3::Client, name: &str) -> Result<(), InfraError> {
    match client.create_bucket().bucket(name).send().await {
        Ok(_) => Ok(()),
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(err) => Err(InfraError::Emulator(
            aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
        )),
    }
}

/// Everything the template declares, under `names`.
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    template: &Template,
    names: &LocalNames,
) -> Result<(), InfraError> {
    let spec = template.table("Table")?;
    create_table(&aws_sdk_dynamodb::Client::new(sdk), &names.table, &spec).await?;
    let s3 = s3_client(sdk);
    for (_, bucket) in &names.buckets {
        create_bucket(&s3, bucket).await?;
    }
    Ok(())
}
