//! Gift delivery: for each new unit, its QR code (PNG and SVG) in S3 under the vendor's
//! prefix and the gift email (through the email job), then the unit is `notified`.

use std::collections::BTreeMap;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::{FulfillmentUnit, GiftState, RedemptionCode, gift_link, qr_images};
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};
use crate::notifications::jobs::{EmailDispatch, InlineImage};
use crate::notifications::model::EmailTemplate;
use crate::orders::model::RECIPIENTS_PER_CHUNK;
use crate::orders::repo::OrderRepo;
use crate::store::{StoreError, Versioned, decode, keys};
use crate::storefronts::repo::StorefrontRepo;
use crate::tenancy::TenantScope;
use crate::vendors::repo::VendorRepo;

/// S3 uploads in flight at once for one job.
const UPLOADS_IN_FLIGHT: usize = 8;
const QR_CONTENT_ID: &str = "gift-qr";

/// The gifts of units `first_number ..= first_number + count - 1` of an order (one split chunk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftDelivery {
    pub order_id: String,
    pub first_number: u32,
    pub count: u32,
}

impl Job for GiftDelivery {
    const TYPE: &'static str = "gift_delivery";

    fn idempotency_key(&self) -> String {
        format!("{}:{}", self.order_id, self.first_number)
    }
}

/// One delivery job per split chunk: ⌈units/50⌉ jobs, sent ten per SQS call.
pub async fn enqueue_gift_delivery(app: &App, scope: &TenantScope, order_id: &str, units: u32) -> Result<(), JobError> {
    let per_job = RECIPIENTS_PER_CHUNK as u32;
    let jobs: Vec<GiftDelivery> = (0..units.div_ceil(per_job))
        .map(|i| GiftDelivery {
            order_id: order_id.to_owned(),
            first_number: i * per_job + 1,
            count: per_job.min(units - i * per_job),
        })
        .collect();
    app.jobs.enqueue_batch(scope, &jobs).await.map_err(|e| JobError::Retryable(e.to_string()))?;
    Ok(())
}

pub struct GiftDeliveryHandler;

impl JobHandler for GiftDeliveryHandler {
    type Job = GiftDelivery;

    async fn handle(&self, ctx: &JobCtx, job: GiftDelivery) -> Result<serde_json::Value, JobError> {
        let delivered = deliver(&ctx.app, &ctx.scope, &job).await?;
        Ok(json!({ "notified": delivered }))
    }
}

pub const GIFT_DELIVERY: WorkerDef = WorkerDef {
    job_type: GiftDelivery::TYPE,
    function: "gift-delivery",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(GiftDeliveryHandler), event, deadline_ms).await })
    },
};

async fn deliver(app: &App, scope: &TenantScope, job: &GiftDelivery) -> Result<usize, JobError> {
    let keys: Vec<_> =
        (job.first_number..job.first_number + job.count).map(|n| keys::unit_key(scope, &job.order_id, n)).collect();
    let mut units: Vec<Versioned<FulfillmentUnit>> =
        app.table.batch_get(&keys).await?.into_iter().map(decode).collect::<Result<_, _>>()?;
    units.retain(|u| u.value.gift == GiftState::Created);
    units.sort_by_key(|u| u.value.number);
    let Some(first) = units.first() else {
        return Ok(0);
    };
    let storefront = StorefrontRepo::new(&app.table, scope)
        .storefront(&first.value.storefront_id)
        .await?
        .ok_or_else(|| JobError::Permanent("the order's storefront is gone".into()))?
        .value;
    let vendor_name = VendorRepo::new(&app.table, scope).profile().await?.map(|v| v.value.name).unwrap_or_default();
    let bucket = app
        .config
        .assets_bucket
        .clone()
        .ok_or_else(|| JobError::Permanent("BESTOW_ASSETS_BUCKET is not set".into()))?;

    // Links and images first: the emails name the images, which must exist when they are sent.
    let mut emails = Vec::with_capacity(units.len());
    let mut uploads: Vec<(String, &'static str, Vec<u8>)> = Vec::with_capacity(units.len() * 2);
    for unit in &units {
        let code = RedemptionCode::parse(&unit.value.code)
            .ok_or_else(|| JobError::Permanent(format!("unit {} has a malformed code", unit.value.id)))?;
        let link = gift_link(&app.config.gift_link_base, storefront.host.as_deref(), &storefront.slug, &code);
        let images = qr_images(&link).map_err(|e| JobError::Permanent(e.to_string()))?;
        let png_key = keys::gift_qr_object(scope, &unit.value.id, "png");
        uploads.push((png_key.clone(), "image/png", images.png));
        uploads.push((keys::gift_qr_object(scope, &unit.value.id, "svg"), "image/svg+xml", images.svg.into_bytes()));
        emails.push(gift_email(&unit.value, &vendor_name, &link, &code, png_key));
    }
    let puts: Vec<_> = uploads
        .into_iter()
        .map(|(key, content_type, body)| {
            app.s3().put_object().bucket(&bucket).key(key).content_type(content_type).body(body.into())
        })
        .collect();
    stream::iter(puts)
        .map(|put| async move { put.send().await.map(|_| ()) })
        .buffer_unordered(UPLOADS_IN_FLIGHT)
        .try_collect::<()>()
        .await
        .map_err(|e| JobError::Retryable(format!("storing QR codes: {}", aws_sdk_s3::error::DisplayErrorContext(e))))?;
    app.jobs.enqueue_batch(scope, &emails).await.map_err(|e| JobError::Retryable(e.to_string()))?;
    // Units the buyer addressed are settled already: those of items mirrored from Shopify get
    // their shop order now (the recipient's acceptance queues the others'). Queued before the
    // units are marked, like the emails, so a retry queues them again (run once per unit).
    let settled: Vec<(&FulfillmentUnit, u64)> = units.iter().map(|u| (&u.value, u.version + 1)).collect();
    crate::shopify::service::order_settled_units(app, scope, &settled).await?;

    // One transaction for the chunk's units (≤ 50 items) and their audit entry; a unit changed
    // meanwhile (its recipient already opened the link) fails it, and the retry skips what is
    // done.
    let repo = OrderRepo::new(&app.table, scope);
    let now = crate::vendors::service::now_rfc3339();
    let mut writes = Vec::with_capacity(units.len() + 1);
    for unit in &units {
        let mut notified = unit.value.clone();
        notified.gift = GiftState::Notified;
        notified.updated_at = now.clone();
        writes.push(repo.save_unit(&notified, unit.version)?);
    }
    let numbers: Vec<String> = units.iter().map(|u| u.value.number.to_string()).collect();
    let audit = AuditEntry::by(
        &format!("job:{}", GiftDelivery::TYPE),
        "system",
        "units.notified",
        format!("orders/{}/units", job.order_id),
    )
    .summary(format!("gift emails queued for units {}", numbers.join(", ")));
    writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
    match app.table.transact(writes).await {
        Ok(()) => Ok(units.len()),
        Err(StoreError::TransactionConditionFailed { .. }) => {
            Err(JobError::Retryable("a unit changed while its gift was delivered".into()))
        }
        Err(other) => Err(other.into()),
    }
}

fn gift_email(
    unit: &FulfillmentUnit,
    vendor_name: &str,
    link: &str,
    code: &RedemptionCode,
    png_key: String,
) -> EmailDispatch {
    let expires_on = unit.expires_at.get(..10).unwrap_or(&unit.expires_at).to_owned();
    let vars = BTreeMap::from([
        ("recipient_name".to_owned(), unit.recipient_name.clone()),
        ("sender_name".to_owned(), unit.sender_name.clone()),
        ("vendor_name".to_owned(), vendor_name.to_owned()),
        ("gift_message".to_owned(), unit.gift_message.clone().unwrap_or_else(|| "Enjoy your gift!".to_owned())),
        ("gift_link".to_owned(), link.to_owned()),
        ("gift_code".to_owned(), code.display()),
        ("expires_on".to_owned(), expires_on),
    ]);
    EmailDispatch {
        // One gift email per unit, however often this job runs.
        message_key: format!("gift-{}", unit.id),
        to_email: unit.recipient_email.clone(),
        to_name: Some(unit.recipient_name.clone()),
        template: EmailTemplate::GiftNotification,
        vars,
        inline_images: vec![InlineImage {
            content_id: QR_CONTENT_ID.to_owned(),
            content_type: "image/png".to_owned(),
            key: png_key,
        }],
    }
}

/// Renders a packing manifest (its selection is the job resource's input).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackingManifest {
    pub job_id: String,
}

impl Job for PackingManifest {
    const TYPE: &'static str = "packing_manifest";

    fn idempotency_key(&self) -> String {
        self.job_id.clone()
    }
}

pub struct PackingManifestHandler;

impl JobHandler for PackingManifestHandler {
    type Job = PackingManifest;

    async fn handle(&self, ctx: &JobCtx, job: PackingManifest) -> Result<serde_json::Value, JobError> {
        let outcome = super::service::run_manifest(&ctx.app, &ctx.scope, &job).await;
        if let Err(JobError::Permanent(why)) = &outcome {
            // The job resource tells staff why; the message is not retried.
            let records = crate::jobs::records::JobRecords::new(&ctx.app.table, &ctx.scope);
            if let Ok(Some(mut record)) = records.get(&job.job_id).await.map(|r| r.map(|r| r.value)) {
                record.status = crate::jobs::records::JobStatus::Failed;
                record.failure = Some(why.clone());
                let _ = records.finish(&record).await;
            }
        }
        outcome
    }
}

pub const PACKING_MANIFEST: WorkerDef = WorkerDef {
    job_type: PackingManifest::TYPE,
    function: "packing-manifest",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(PackingManifestHandler), event, deadline_ms).await },
        )
    },
};

/// One vendor's reminders and expiries for one hour of the schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GiftReminders {
    /// `YYYY-MM-DDTHH` (UTC): the schedule's run, so a repeated run of the same hour is one job.
    pub window: String,
}

impl Job for GiftReminders {
    const TYPE: &'static str = "gift_reminders";

    fn idempotency_key(&self) -> String {
        self.window.clone()
    }
}

pub struct GiftRemindersHandler;

impl JobHandler for GiftRemindersHandler {
    type Job = GiftReminders;

    async fn handle(&self, ctx: &JobCtx, _job: GiftReminders) -> Result<serde_json::Value, JobError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let outcome = super::service::sweep_vendor(&ctx.app, &ctx.scope, now)
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?;
        Ok(json!(outcome))
    }
}

pub const GIFT_REMINDERS: WorkerDef = WorkerDef {
    job_type: GiftReminders::TYPE,
    function: "gift-reminders",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(GiftRemindersHandler), event, deadline_ms).await },
        )
    },
};

const GIFT_SWEEP_FUNCTION: &str = "gift-sweep";

/// The hourly schedule: one `gift_reminders` job per active vendor.
pub const GIFT_SWEEP: crate::jobs::schedule::ScheduleDef = crate::jobs::schedule::ScheduleDef {
    function: GIFT_SWEEP_FUNCTION,
    run: |app, now| Box::pin(enqueue_sweeps(app, now)),
};

pub async fn enqueue_sweeps(app: App, now_epoch_s: i64) -> Result<serde_json::Value, String> {
    use crate::vendors::model::VendorStatus;
    crate::jobs::schedule::enqueue_per_vendor(&app, GIFT_SWEEP_FUNCTION, now_epoch_s, |window, vendor| {
        (vendor.status == VendorStatus::Active).then(|| GiftReminders { window: window.to_owned() })
    })
    .await
}
