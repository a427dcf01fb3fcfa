//! API shapes of bulk operations. An import's body is the CSV file itself (`text/csv`);
//! both answer 202 with the job resource (`Location` points to it).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{BulkItem, VariantChanges, VariantFilter};

/// Either `filter` with `changes` (the same changes for every variant matched), or `items`
/// (each variant, by SKU or by ids, with its own changes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUpdateRequest {
    pub filter: Option<VariantFilter>,
    pub changes: Option<VariantChanges>,
    pub items: Option<Vec<BulkItem>>,
}

/// The CSV columns an import takes, for the OpenAPI document (the body is `text/csv`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportFormat {
    /// `handle,title,description,status,tags,option1_name,option1_value,…,sku,barcode,
    /// price_minor,compare_at_price_minor,weight_grams,stock_quantity,inventory_policy`;
    /// one row per variant; rows of one product share its handle.
    pub columns: Vec<String>,
}
