//! API shapes of gifts (as recipients see them) and of the fulfillment queue.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{FulfilAction, GiftState, UnitStatus};
use crate::orders::dto::UnitResponse;
use crate::orders::model::Address;
use crate::storefronts::model::Branding;

/// A gift as its recipient sees it: no prices, no other recipient, nothing of the order.
#[derive(Debug, Serialize, ToSchema)]
pub struct GiftView {
    /// `XXXX-XXXX-XXXX-XXXX`.
    pub code: String,
    pub recipient_name: String,
    pub sender_name: String,
    pub gift_message: Option<String>,
    pub storefront_name: String,
    pub branding: Branding,
    pub gift: GiftState,
    pub status: UnitStatus,
    pub expires_at: String,
    /// The variant and the address can still be chosen (until the unit is packed).
    pub changeable: bool,
    pub lines: Vec<GiftLine>,
    pub address: Option<Address>,
    /// Countries the gift can be shipped to (the shipping method's zone).
    pub shipping_countries: Vec<String>,
    pub thank_you_note: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GiftLine {
    pub product_id: String,
    pub title: String,
    pub description: String,
    pub quantity: u32,
    /// The variant the gift is now.
    pub variant_id: String,
    /// What the recipient may choose instead (and the current one).
    pub choices: Vec<GiftChoice>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GiftChoice {
    pub variant_id: String,
    /// The option values, e.g. `M / Blue`.
    pub title: String,
    pub in_stock: bool,
}

/// The recipient's choice: one variant per line (in the gift's line order) and the address.
/// Either may be left out to keep what is there; an address is needed once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptGiftRequest {
    #[serde(default)]
    pub variant_ids: Option<Vec<String>>,
    #[serde(default)]
    pub address: Option<Address>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThankYouRequest {
    /// 1–1,000 characters, shown to the buyer on the order.
    pub note: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilUnit {
    pub unit_id: String,
    /// Required to ship.
    #[serde(default)]
    pub carrier: Option<String>,
    /// Required to ship.
    #[serde(default)]
    pub tracking_number: Option<String>,
}

/// Marks up to 99 units packed, shipped (with carrier and tracking number; the recipient is
/// emailed) or delivered, all or none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilRequest {
    pub action: FulfilAction,
    pub units: Vec<FulfilUnit>,
}

/// The units a packing manifest lists: the given ids (up to 1,000), or the queue in one
/// status (default `ready`), optionally of one order (up to 1,000 units).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestRequest {
    #[serde(default)]
    pub unit_ids: Option<Vec<String>>,
    #[serde(default)]
    pub status: Option<UnitStatus>,
    #[serde(default)]
    pub order_id: Option<String>,
}

/// A packing manifest: its job's state, and a download link once it is ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManifestResponse {
    pub id: String,
    pub status: crate::jobs::records::JobStatus,
    pub units: u64,
    pub pages: Option<u64>,
    /// A presigned URL, valid for `expires_in_seconds`; `null` until the PDF exists.
    pub download_url: Option<String>,
    pub expires_in_seconds: Option<u64>,
    pub failure: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FulfilResponse {
    pub units: Vec<UnitResponse>,
}
