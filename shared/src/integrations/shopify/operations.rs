//! The typed operations Bestow runs against a shop, with their GraphQL documents and the
//! requested cost Shopify calculates for each (objects cost 1, a connection 2 plus `first` ×
//! its nodes' cost), so the client can wait for the bucket before sending, and no query passes
//! Shopify's single-query maximum of 1,000 points.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{ShopifyClient, ShopifyError};

/// A variant with its selected options (3 × option and value), inventory item, measurement
/// and weight.
const VARIANT_COST: u32 = 10;
/// A product with its options and their values (an estimate: lists have no `first`).
const PRODUCT_COST: u32 = 10;
/// Products per page of a full sync, with the first [`VARIANTS_PER_PRODUCT_PAGE`] variants of
/// each: 8 × (10 + 2 + 10 × 10) + 2 = 898 points.
pub const PRODUCTS_PER_PAGE: u32 = 8;
pub const VARIANTS_PER_PRODUCT_PAGE: u32 = 10;
/// Further variants of a large product, read on their own: 90 × 10 + 2 = 902 points.
pub const VARIANTS_PER_PAGE: u32 = 90;

fn products_cost(products: u32, variants_each: u32) -> f64 {
    f64::from(products * (PRODUCT_COST + 2 + variants_each * VARIANT_COST) + 2)
}

const VARIANT_FIELDS: &str = "id title sku barcode price compareAtPrice inventoryPolicy inventoryQuantity updatedAt \
selectedOptions { name value optionValue { id } } \
inventoryItem { id tracked measurement { weight { unit value } } }";

fn product_fields() -> String {
    format!(
        "id legacyResourceId title handle descriptionHtml status tags updatedAt \
         options {{ id name position optionValues {{ id name }} }} \
         variants(first: $variantsFirst) {{ nodes {{ {VARIANT_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }}"
    )
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Connection<T> {
    pub nodes: Vec<T>,
    #[serde(rename = "pageInfo")]
    pub page_info: PageInfo,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Node {
    pub id: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OptionValue {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProductOption {
    pub id: String,
    pub name: String,
    pub position: u32,
    pub option_values: Vec<OptionValue>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SelectedOption {
    pub name: String,
    pub value: String,
    pub option_value: Option<Node>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Weight {
    pub unit: String,
    pub value: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Measurement {
    pub weight: Option<Weight>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct InventoryItem {
    pub id: String,
    pub tracked: bool,
    pub measurement: Option<Measurement>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    pub id: String,
    pub title: String,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// A decimal in the shop's currency, e.g. `"12.50"`.
    pub price: String,
    pub compare_at_price: Option<String>,
    /// `DENY` or `CONTINUE`.
    pub inventory_policy: String,
    pub inventory_quantity: Option<i64>,
    pub updated_at: String,
    pub selected_options: Vec<SelectedOption>,
    pub inventory_item: InventoryItem,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub id: String,
    pub legacy_resource_id: String,
    pub title: String,
    pub handle: String,
    pub description_html: String,
    /// `ACTIVE`, `DRAFT` or `ARCHIVED`.
    pub status: String,
    pub tags: Vec<String>,
    pub updated_at: String,
    pub options: Vec<ProductOption>,
    pub variants: Connection<Variant>,
}

/// A variant's stock as the inventory item reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InventoryState {
    pub id: String,
    pub tracked: bool,
    /// The variants stocked from this item (one today; a connection since 2026-01, which
    /// replaced the single `variant`).
    pub variants: Nodes<InventoryVariant>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Nodes<T> {
    pub nodes: Vec<T>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InventoryVariant {
    pub id: String,
    pub inventory_quantity: Option<i64>,
    pub inventory_policy: String,
    pub product: Node,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OrderRef {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct UserError {
    message: String,
}

/// An order Bestow asks the shop to create for one gift unit.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    pub line_items: Vec<NewLineItem>,
    pub email: Option<String>,
    pub shipping_address: NewAddress,
    pub tags: Vec<String>,
    pub source_identifier: String,
    pub note: Option<String>,
    /// Paid: the buyer paid Bestow through Stripe.
    pub financial_status: &'static str,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewLineItem {
    pub variant_id: String,
    pub quantity: u32,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAddress {
    pub first_name: String,
    pub last_name: String,
    pub address1: String,
    pub address2: Option<String>,
    pub city: String,
    pub province_code: Option<String>,
    pub zip: String,
    pub country_code: String,
    pub phone: Option<String>,
}

/// What `orderCreate` said: the order, or why the shop would not create it (no stock).
pub enum OrderCreated {
    Created(OrderRef),
    Refused(String),
}

impl ShopifyClient {
    /// A page of the shop's products, each with its first variants.
    pub async fn products_page(&self, after: Option<&str>) -> Result<Connection<Product>, ShopifyError> {
        #[derive(Deserialize)]
        struct Data {
            products: Connection<Product>,
        }
        let query = format!(
            "query Products($first: Int!, $after: String, $variantsFirst: Int!) {{ \
             products(first: $first, after: $after, sortKey: ID) {{ nodes {{ {} }} pageInfo {{ hasNextPage endCursor }} }} }}",
            product_fields()
        );
        let cost = products_cost(PRODUCTS_PER_PAGE, VARIANTS_PER_PRODUCT_PAGE);
        let variables =
            json!({ "first": PRODUCTS_PER_PAGE, "after": after, "variantsFirst": VARIANTS_PER_PRODUCT_PAGE });
        Ok(self.run::<Data>("Products", &query, variables, cost).await?.products)
    }

    /// One product with every variant (further pages read as needed); `None` when the shop no
    /// longer has it.
    pub async fn product(&self, product_gid: &str) -> Result<Option<Product>, ShopifyError> {
        #[derive(Deserialize)]
        struct Data {
            product: Option<Product>,
        }
        let query =
            format!("query Product($id: ID!, $variantsFirst: Int!) {{ product(id: $id) {{ {} }} }}", product_fields());
        let cost = products_cost(1, VARIANTS_PER_PRODUCT_PAGE) - 2.0;
        let variables = json!({ "id": product_gid, "variantsFirst": VARIANTS_PER_PRODUCT_PAGE });
        let Some(mut product) = self.run::<Data>("Product", &query, variables, cost).await?.product else {
            return Ok(None);
        };
        self.complete_variants(&mut product).await?;
        Ok(Some(product))
    }

    /// Reads the variants a product page left out, so `product.variants` holds all of them.
    pub async fn complete_variants(&self, product: &mut Product) -> Result<(), ShopifyError> {
        #[derive(Deserialize)]
        struct Data {
            product: Option<VariantsOf>,
        }
        #[derive(Deserialize)]
        struct VariantsOf {
            variants: Connection<Variant>,
        }
        let query = format!(
            "query ProductVariants($id: ID!, $first: Int!, $after: String) {{ product(id: $id) {{ \
             variants(first: $first, after: $after) {{ nodes {{ {VARIANT_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }} }}"
        );
        while product.variants.page_info.has_next_page {
            let variables =
                json!({ "id": product.id, "first": VARIANTS_PER_PAGE, "after": product.variants.page_info.end_cursor });
            let cost = f64::from(VARIANTS_PER_PAGE * VARIANT_COST + 2);
            let Some(more) = self.run::<Data>("ProductVariants", &query, variables, cost).await?.product else {
                // Deleted while being read: what was read stands; the delete webhook archives it.
                break;
            };
            let stuck = more.variants.page_info.end_cursor.is_none()
                || more.variants.page_info.end_cursor == product.variants.page_info.end_cursor;
            product.variants.nodes.extend(more.variants.nodes);
            product.variants.page_info = more.variants.page_info;
            if stuck && product.variants.page_info.has_next_page {
                return Err(ShopifyError::Unavailable("Shopify's variant pages do not advance".into()));
            }
        }
        Ok(())
    }

    /// A variant's stock across the shop's locations, by its inventory item.
    pub async fn inventory_item(&self, inventory_item_gid: &str) -> Result<Option<InventoryState>, ShopifyError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            inventory_item: Option<InventoryState>,
        }
        let query = "query InventoryItem($id: ID!) { inventoryItem(id: $id) { id tracked \
                     variants(first: 5) { nodes { id inventoryQuantity inventoryPolicy product { id } } } } }";
        Ok(self.run::<Data>("InventoryItem", query, json!({ "id": inventory_item_gid }), 20.0).await?.inventory_item)
    }

    /// Whether the token still opens the shop: `Ok(false)` when Shopify refuses it (the app
    /// was uninstalled).
    pub async fn token_works(&self) -> Result<bool, ShopifyError> {
        #[derive(Deserialize)]
        struct Data {
            #[allow(dead_code)]
            shop: serde_json::Value,
        }
        match self
            .run::<Data>("ShopInfo", "query ShopInfo { shop { name myshopifyDomain currencyCode } }", json!({}), 1.0)
            .await
        {
            Ok(_) => Ok(true),
            Err(ShopifyError::Unauthorized) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Subscribes `callback_url` to a topic (`PRODUCTS_UPDATE`, …); an existing subscription
    /// of the same topic and address counts as done. (`uri` replaced `callbackUrl` in 2025-10.)
    pub async fn subscribe_webhook(&self, topic: &str, callback_url: &str) -> Result<(), ShopifyError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            webhook_subscription_create: Payload,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Payload {
            user_errors: Vec<UserError>,
        }
        let query = "mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, \
                     $webhookSubscription: WebhookSubscriptionInput!) { \
                     webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) { \
                     webhookSubscription { id topic } userErrors { field message } } }";
        let variables = json!({ "topic": topic, "webhookSubscription": { "uri": callback_url, "format": "JSON" } });
        let data: Data = self.run("WebhookSubscriptionCreate", query, variables, 10.0).await?;
        let errors: Vec<_> = data
            .webhook_subscription_create
            .user_errors
            .into_iter()
            .filter(|e| !e.message.contains("already been taken"))
            .map(|e| e.message)
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(ShopifyError::Rejected(errors.join("; "))) }
    }

    /// Orders carrying `tag` (Bestow tags each order with its unit, so a retried job finds the
    /// order its earlier try created).
    pub async fn orders_tagged(&self, tag: &str) -> Result<Vec<OrderRef>, ShopifyError> {
        #[derive(Deserialize)]
        struct Data {
            orders: Nodes,
        }
        #[derive(Deserialize)]
        struct Nodes {
            nodes: Vec<OrderRef>,
        }
        let query = "query OrdersByTag($first: Int!, $query: String!) { \
                     orders(first: $first, query: $query) { nodes { id name tags } } }";
        let variables = json!({ "first": 5, "query": format!("tag:'{}'", tag.replace('\'', "")) });
        // Search matches words, not whole tags: keep the orders carrying exactly this one.
        let orders = self.run::<Data>("OrdersByTag", query, variables, 7.0).await?.orders.nodes;
        Ok(orders.into_iter().filter(|o| o.tags.iter().any(|t| t == tag)).collect())
    }

    /// Creates a paid order, decrementing stock as the shop's inventory policy allows.
    pub async fn create_order(&self, order: &NewOrder) -> Result<OrderCreated, ShopifyError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            order_create: Payload,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Payload {
            order: Option<OrderRef>,
            user_errors: Vec<UserError>,
        }
        let query = "mutation OrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) { \
                     orderCreate(order: $order, options: $options) { order { id name tags } \
                     userErrors { field message } } }";
        let variables = json!({ "order": order, "options": { "inventoryBehaviour": "DECREMENT_OBEYING_POLICY" } });
        let data: Data = self.run_once("OrderCreate", query, variables, 10.0).await?;
        match data.order_create.order {
            Some(order) => Ok(OrderCreated::Created(order)),
            None => Ok(OrderCreated::Refused(
                data.order_create.user_errors.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; "),
            )),
        }
    }
}
