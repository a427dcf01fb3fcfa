//! Job resources: what a client polls after a 202 (`GET /vendors/{vendorId}/jobs/{jobId}`).
//! A record is created with the job's first effect (in the same transaction where there is
//! one) and updated by the job's handler: status, progress counts, row errors, a result.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{Condition, Expression, StoreError, Table, Versioned, decode, encode, keys};
use crate::tenancy::TenantScope;

const ENTITY: &str = "job_record";
const INPUT_ENTITY: &str = "job_input";
/// Row errors kept on the record; past this the count goes on but the list stops (an item
/// holds at most 400 KB).
pub const MAX_RECORDED_ERRORS: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    /// Finished with some rows refused (see `errors`); the others took effect.
    CompletedWithErrors,
    Failed,
}

/// One refused row or item, by line (CSV) or JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    pub line: Option<u64>,
    pub pointer: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobRecord {
    pub id: String,
    pub job_type: String,
    pub status: JobStatus,
    /// The resource the job works on, e.g. `products/01j…`.
    pub resource: Option<String>,
    /// Units of work (variants, rows); 0 until known.
    pub total: u64,
    pub processed: u64,
    pub failed: u64,
    pub errors: Vec<RowError>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// The reason of a failure, for people.
    pub failure: Option<String>,
    pub requested_by: String,
    pub requested_by_role: String,
    pub created_at: String,
    pub updated_at: String,
}

impl JobRecord {
    pub fn queued(scope: &TenantScope, id: String, job_type: &str, resource: Option<String>) -> Self {
        let now = crate::vendors::service::now_rfc3339();
        Self {
            id,
            job_type: job_type.to_owned(),
            status: JobStatus::Queued,
            resource,
            total: 0,
            processed: 0,
            failed: 0,
            errors: Vec::new(),
            result: None,
            failure: None,
            requested_by: scope.actor().user_id.clone(),
            requested_by_role: scope.actor().role.as_str().to_owned(),
            created_at: now.clone(),
            updated_at: now,
        }
    }
}

/// An item holds a map: the input (a CSV text, a request) goes in one field.
#[derive(Serialize, Deserialize)]
struct JobInput<T> {
    input: T,
}

pub struct JobRecords<'a> {
    table: &'a Table,
    scope: &'a TenantScope,
}

fn exists() -> Expression {
    Expression { text: "attribute_exists(#pk)", names: vec![("#pk", crate::store::attr::PK)], values: vec![] }
}

impl<'a> JobRecords<'a> {
    pub fn new(table: &'a Table, scope: &'a TenantScope) -> Self {
        Self { table, scope }
    }

    pub async fn get(&self, job_id: &str) -> Result<Option<Versioned<JobRecord>>, StoreError> {
        self.table.get(&keys::job_record_key(self.scope, job_id)).await?.map(decode).transpose()
    }

    /// The new record as one item of the transaction that starts the job.
    pub fn transact_create(&self, record: &JobRecord) -> Result<TransactWriteItem, StoreError> {
        let item =
            encode(&keys::job_record_key(self.scope, &record.id), ENTITY, Some(self.scope.vendor_id()), 1, record)?;
        self.table.transact_put(item, Condition::NotExists)
    }

    pub async fn create(&self, record: &JobRecord) -> Result<(), StoreError> {
        let item =
            encode(&keys::job_record_key(self.scope, &record.id), ENTITY, Some(self.scope.vendor_id()), 1, record)?;
        self.table.put(item, Condition::NotExists).await
    }

    /// The job's input, as one item of the transaction that creates its record.
    pub fn transact_put_input<T: Serialize>(&self, job_id: &str, input: &T) -> Result<TransactWriteItem, StoreError> {
        let key = keys::job_input_key(self.scope, job_id);
        let item = encode(&key, INPUT_ENTITY, Some(self.scope.vendor_id()), 1, &JobInput { input })?;
        self.table.transact_put(item, Condition::NotExists)
    }

    pub async fn input<T: serde::de::DeserializeOwned>(&self, job_id: &str) -> Result<Option<T>, StoreError> {
        let found: Option<Versioned<JobInput<T>>> =
            self.table.get(&keys::job_input_key(self.scope, job_id)).await?.map(decode).transpose()?;
        Ok(found.map(|v| v.value.input))
    }

    pub async fn commit(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.table.transact(items).await
    }

    /// Progress: one UpdateItem.
    pub async fn progress(
        &self,
        job_id: &str,
        status: JobStatus,
        total: u64,
        processed: u64,
        failed: u64,
    ) -> Result<(), StoreError> {
        self.table
            .update(
                &keys::job_record_key(self.scope, job_id),
                &[
                    ("status", to_attr(&status)?),
                    ("total", AttributeValue::N(total.to_string())),
                    ("processed", AttributeValue::N(processed.to_string())),
                    ("failed", AttributeValue::N(failed.to_string())),
                    ("updated_at", AttributeValue::S(crate::vendors::service::now_rfc3339())),
                ],
                &[],
                &exists(),
            )
            .await
    }

    /// The final state: status, counts, the first [`MAX_RECORDED_ERRORS`] row errors, the result.
    pub async fn finish(&self, record: &JobRecord) -> Result<(), StoreError> {
        let mut errors = record.errors.clone();
        errors.truncate(MAX_RECORDED_ERRORS);
        self.table
            .update(
                &keys::job_record_key(self.scope, &record.id),
                &[
                    ("status", to_attr(&record.status)?),
                    ("total", AttributeValue::N(record.total.to_string())),
                    ("processed", AttributeValue::N(record.processed.to_string())),
                    ("failed", AttributeValue::N(record.failed.to_string())),
                    ("errors", to_attr(&errors)?),
                    ("result", to_attr(&record.result)?),
                    ("failure", to_attr(&record.failure)?),
                    ("updated_at", AttributeValue::S(crate::vendors::service::now_rfc3339())),
                ],
                &[],
                &exists(),
            )
            .await
    }
}

/// Creates the job resource with its input and enqueues the job; if the queue refuses, the
/// job resource says so (failed) and the caller gets a 500.
pub async fn start_job<J: crate::jobs::Job, I: serde::Serialize>(
    app: &crate::app::App,
    scope: &TenantScope,
    job_id: String,
    input: &I,
    job: &J,
) -> Result<JobRecord, crate::error::ApiError> {
    let records = JobRecords::new(&app.table, scope);
    let record = JobRecord::queued(scope, job_id.clone(), J::TYPE, None);
    records.commit(vec![records.transact_create(&record)?, records.transact_put_input(&job_id, input)?]).await?;
    if let Err(err) = app.jobs.enqueue(scope, job).await {
        let mut failed = record.clone();
        failed.status = JobStatus::Failed;
        failed.failure = Some("the job could not be queued; start it again".into());
        if let Err(store) = records.finish(&failed).await {
            tracing::error!(error = %store, "could not mark the unqueued job failed");
        }
        return Err(crate::error::ApiError::internal(err));
    }
    Ok(record)
}

fn to_attr<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}
