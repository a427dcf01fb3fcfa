//! Shopify's jobs: the full catalogue sync, one webhook's effect, and the shop order of an
//! accepted gift unit.

use serde::{Deserialize, Serialize};

use super::service;
use crate::jobs::records::{JobRecord, JobRecords, JobStatus};
use crate::jobs::registry::WorkerDef;
use crate::jobs::worker::process_batch;
use crate::jobs::{Job, JobCtx, JobError, JobHandler};

/// `maxReceiveCount` of the sync queue in `template.yaml`: the last try marks the job failed.
pub const SYNC_MAX_RECEIVES: u32 = 3;

/// A full sync of the vendor's shop into the catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifySync {
    /// The job resource's id.
    pub job_id: String,
}

impl Job for ShopifySync {
    const TYPE: &'static str = "shopify_sync";

    fn idempotency_key(&self) -> String {
        self.job_id.clone()
    }
}

pub struct ShopifySyncHandler;

impl JobHandler for ShopifySyncHandler {
    type Job = ShopifySync;

    async fn handle(&self, ctx: &JobCtx, job: ShopifySync) -> Result<serde_json::Value, JobError> {
        let records = JobRecords::new(&ctx.app.table, &ctx.scope);
        let outcome = service::run_full_sync(&ctx.app, &ctx.scope, &job).await;
        // `finish` writes only the outcome's fields (to a record that exists), so the record
        // is not read first.
        let mut record = JobRecord::queued(&ctx.scope, job.job_id.clone(), ShopifySync::TYPE, None);
        match &outcome {
            Ok(result) => {
                let errors = result.get("errors").and_then(|e| e.as_array()).map_or(0, Vec::len);
                record.status = if errors == 0 { JobStatus::Succeeded } else { JobStatus::CompletedWithErrors };
                record.total = result.pointer("/stats/products").and_then(|v| v.as_u64()).unwrap_or(0);
                record.processed = record.total;
                record.failed = errors as u64;
                record.result = Some(result.clone());
            }
            Err(err) if matches!(err, JobError::Permanent(_)) || ctx.receive_count >= SYNC_MAX_RECEIVES => {
                record.status = JobStatus::Failed;
                record.failure = Some(err.to_string());
            }
            Err(_) => return outcome,
        }
        if let Err(err) = records.finish(&record).await {
            tracing::warn!(error = %err, "sync job record not finished");
        }
        outcome
    }
}

pub const SHOPIFY_SYNC: WorkerDef = WorkerDef {
    job_type: ShopifySync::TYPE,
    function: "shopify-sync",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(ShopifySyncHandler), event, deadline_ms).await })
    },
};

/// What a webhook delivery asks for, reduced to what its effect needs (a product's full
/// payload can pass SQS's 256 KB; the job reads the product from Shopify instead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WebhookEvent {
    /// products/create, products/update: numbers are Shopify's numeric ids.
    Product {
        product_id: String,
        updated_at: Option<String>,
    },
    ProductDeleted {
        product_id: String,
    },
    Inventory {
        inventory_item_id: String,
    },
    OrderFulfilled {
        order_id: String,
        tags: String,
        carrier: Option<String>,
        tracking_number: Option<String>,
    },
    OrderCancelled {
        order_id: String,
        tags: String,
        cancelled_at: Option<String>,
    },
    Uninstalled,
    DataRequest {
        request_id: String,
        customer_email: Option<String>,
        order_ids: Vec<String>,
    },
    CustomerRedact {
        customer_email: Option<String>,
        order_ids: Vec<String>,
    },
    ShopRedact,
}

/// A JSON id as text (Shopify sends numbers; some tools send strings).
fn id_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn text(value: Option<&serde_json::Value>) -> Option<String> {
    value.and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn ids(value: Option<&serde_json::Value>) -> Vec<String> {
    value.and_then(|v| v.as_array()).map(|a| a.iter().filter_map(|v| id_text(Some(v))).collect()).unwrap_or_default()
}

impl WebhookEvent {
    /// The event of a delivery; `None` for a topic Bestow does not act on or a payload that
    /// lacks what the topic needs. Only the body is signed (with one secret for every shop),
    /// so the topics that erase something must name, in their body, the shop the
    /// `X-Shopify-Shop-Domain` header names: `Err` when they do not.
    pub fn from_delivery(topic: &str, shop: &str, payload: &serde_json::Value) -> Result<Option<Self>, String> {
        let named = match topic {
            "app/uninstalled" => text(payload.get("myshopify_domain")).or_else(|| text(payload.get("domain"))),
            "shop/redact" | "customers/redact" | "customers/data_request" => text(payload.get("shop_domain")),
            _ => return Ok(Self::event(topic, payload)),
        };
        if !named.is_some_and(|n| n.eq_ignore_ascii_case(shop)) {
            return Err(format!("the {topic} body names another shop than X-Shopify-Shop-Domain"));
        }
        Ok(Self::event(topic, payload))
    }

    fn event(topic: &str, payload: &serde_json::Value) -> Option<Self> {
        let order_gid = || {
            text(payload.get("admin_graphql_api_id"))
                .or_else(|| id_text(payload.get("id")).map(|n| format!("gid://shopify/Order/{n}")))
        };
        Some(match topic {
            "products/create" | "products/update" => {
                Self::Product { product_id: id_text(payload.get("id"))?, updated_at: text(payload.get("updated_at")) }
            }
            "products/delete" => Self::ProductDeleted { product_id: id_text(payload.get("id"))? },
            "inventory_levels/update" => {
                Self::Inventory { inventory_item_id: id_text(payload.get("inventory_item_id"))? }
            }
            "orders/fulfilled" => {
                let fulfillment = payload.get("fulfillments").and_then(|f| f.as_array()).and_then(|f| f.last());
                Self::OrderFulfilled {
                    order_id: order_gid()?,
                    tags: text(payload.get("tags")).unwrap_or_default(),
                    carrier: fulfillment.and_then(|f| text(f.get("tracking_company"))),
                    tracking_number: fulfillment.and_then(|f| text(f.get("tracking_number"))),
                }
            }
            "orders/cancelled" => Self::OrderCancelled {
                order_id: order_gid()?,
                tags: text(payload.get("tags")).unwrap_or_default(),
                cancelled_at: text(payload.get("cancelled_at")),
            },
            "app/uninstalled" => Self::Uninstalled,
            "customers/data_request" => Self::DataRequest {
                request_id: id_text(payload.pointer("/data_request/id"))?,
                customer_email: text(payload.pointer("/customer/email")),
                order_ids: ids(payload.get("orders_requested")),
            },
            "customers/redact" => Self::CustomerRedact {
                customer_email: text(payload.pointer("/customer/email")),
                order_ids: ids(payload.get("orders_to_redact")),
            },
            "shop/redact" => Self::ShopRedact,
            _ => return None,
        })
    }
}

/// One accepted webhook delivery's effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyWebhook {
    /// `X-Shopify-Webhook-Id`: the same delivery is the same effect.
    pub webhook_id: String,
    pub topic: String,
    /// The shop that sent it: a shop the vendor no longer has is not acted on.
    pub shop: String,
    pub event: WebhookEvent,
}

impl Job for ShopifyWebhook {
    const TYPE: &'static str = "shopify_event";

    fn idempotency_key(&self) -> String {
        self.webhook_id.clone()
    }
}

pub struct ShopifyWebhookHandler;

impl JobHandler for ShopifyWebhookHandler {
    type Job = ShopifyWebhook;

    async fn handle(&self, ctx: &JobCtx, job: ShopifyWebhook) -> Result<serde_json::Value, JobError> {
        service::run_webhook(&ctx.app, &ctx.scope, &job).await
    }
}

pub const SHOPIFY_WEBHOOK: WorkerDef = WorkerDef {
    job_type: ShopifyWebhook::TYPE,
    function: "shopify-event",
    run: |app, event, deadline_ms| {
        Box::pin(
            async move { process_batch(&app, std::sync::Arc::new(ShopifyWebhookHandler), event, deadline_ms).await },
        )
    },
};

/// The shop order of one accepted unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyOrder {
    pub order_id: String,
    pub number: u32,
    /// The unit's version when it was queued: each settling of the unit is its own job (one
    /// that found the unit not ready yet does not block a later one); the unit's own record
    /// of its shop order keeps the order single.
    pub unit_version: u64,
}

impl Job for ShopifyOrder {
    const TYPE: &'static str = "shopify_order";

    fn idempotency_key(&self) -> String {
        format!("{}:{}:{}", self.order_id, self.number, self.unit_version)
    }
}

pub struct ShopifyOrderHandler;

impl JobHandler for ShopifyOrderHandler {
    type Job = ShopifyOrder;

    async fn handle(&self, ctx: &JobCtx, job: ShopifyOrder) -> Result<serde_json::Value, JobError> {
        service::create_shop_order(&ctx.app, &ctx.scope, &job).await
    }
}

pub const SHOPIFY_ORDER: WorkerDef = WorkerDef {
    job_type: ShopifyOrder::TYPE,
    function: "shopify-order",
    run: |app, event, deadline_ms| {
        Box::pin(async move { process_batch(&app, std::sync::Arc::new(ShopifyOrderHandler), event, deadline_ms).await })
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The sample events of the three workers carry payloads their jobs accept.
    #[test]
    fn sample_events_decode_as_their_jobs() {
        use crate::jobs::sample_payload as payload;
        serde_json::from_value::<ShopifySync>(payload(include_str!("../../../events/shopify-sync.json"))).unwrap();
        serde_json::from_value::<ShopifyWebhook>(payload(include_str!("../../../events/shopify-event.json"))).unwrap();
        serde_json::from_value::<ShopifyOrder>(payload(include_str!("../../../events/shopify-order.json"))).unwrap();
    }

    #[test]
    fn deliveries_become_events() {
        let product = WebhookEvent::from_delivery(
            "products/update",
            "a.myshopify.com",
            &json!({ "id": 632910392u64, "updated_at": "2026-11-26T10:00:00-05:00", "variants": [] }),
        )
        .unwrap();
        assert_eq!(
            product,
            Some(WebhookEvent::Product {
                product_id: "632910392".into(),
                updated_at: Some("2026-11-26T10:00:00-05:00".into())
            })
        );
        let fulfilled = WebhookEvent::from_delivery(
            "orders/fulfilled",
            "a.myshopify.com",
            &json!({ "id": 5, "tags": "bestow, bestow-unit-x-00001",
                     "fulfillments": [{ "tracking_company": "DHL", "tracking_number": "JD01" }] }),
        )
        .unwrap();
        assert_eq!(
            fulfilled,
            Some(WebhookEvent::OrderFulfilled {
                order_id: "gid://shopify/Order/5".into(),
                tags: "bestow, bestow-unit-x-00001".into(),
                carrier: Some("DHL".into()),
                tracking_number: Some("JD01".into()),
            })
        );
        assert_eq!(
            WebhookEvent::from_delivery("products/update", "a.myshopify.com", &json!({ "title": "x" })),
            Ok(None)
        );
        assert_eq!(WebhookEvent::from_delivery("carts/create", "a.myshopify.com", &json!({ "id": 1 })), Ok(None));
        // An erasing topic must name the header's shop in its (signed) body.
        let uninstall = json!({ "id": 1, "myshopify_domain": "a.myshopify.com" });
        assert_eq!(
            WebhookEvent::from_delivery("app/uninstalled", "a.myshopify.com", &uninstall),
            Ok(Some(WebhookEvent::Uninstalled))
        );
        assert!(WebhookEvent::from_delivery("app/uninstalled", "victim.myshopify.com", &uninstall).is_err());
        assert!(
            WebhookEvent::from_delivery(
                "shop/redact",
                "victim.myshopify.com",
                &json!({ "shop_domain": "a.myshopify.com" })
            )
            .is_err()
        );
    }
}
