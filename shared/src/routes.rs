//! Every HTTP route of the API. The local gateway serves this list, the OpenAPI document is
//! built from it, and a test holds it equal to `template.yaml` and `functions/`.

use crate::audit::routes as audit;
use crate::billing::routes as billing;
use crate::bulk::routes as bulk;
use crate::catalog::routes as catalog;
use crate::fulfillment::routes as fulfillment;
use crate::http::RouteDef;
use crate::jobs::routes as jobs;
use crate::notifications::routes as notifications;
use crate::orders::routes as orders;
use crate::plans::routes as plans;
use crate::shopify::routes as shopify;
use crate::storefronts::routes as storefronts;
use crate::vendors::routes as vendors;
use crate::xero::routes as xero;

pub const ALL: &[&RouteDef] = &[
    &vendors::CREATE_VENDOR,
    &vendors::LIST_VENDORS,
    &vendors::SUSPEND_VENDOR,
    &vendors::REACTIVATE_VENDOR,
    &vendors::GET_VENDOR,
    &vendors::UPDATE_VENDOR,
    &vendors::GET_SHIPPING,
    &vendors::PUT_SHIPPING,
    &vendors::QUOTE_SHIPPING,
    &vendors::GET_SMTP,
    &vendors::PUT_SMTP,
    &notifications::SMTP_TEST,
    &vendors::GET_STRIPE,
    &vendors::PUT_STRIPE,
    &vendors::GET_STORAGE,
    &vendors::PUT_STORAGE,
    &catalog::CREATE_PRODUCT,
    &catalog::LIST_PRODUCTS,
    &catalog::GET_PRODUCT,
    &catalog::UPDATE_PRODUCT,
    &catalog::PUT_OPTIONS,
    &catalog::LIST_VARIANTS,
    &catalog::UPDATE_VARIANT,
    &catalog::CREATE_IMAGE,
    &catalog::CONFIRM_IMAGE,
    &catalog::DELETE_IMAGE,
    &bulk::IMPORT_PRODUCTS,
    &bulk::BULK_UPDATE_VARIANTS,
    &jobs::GET_JOB,
    &audit::LIST_AUDIT,
    &storefronts::CREATE_STOREFRONT,
    &storefronts::LIST_STOREFRONTS,
    &storefronts::GET_STOREFRONT,
    &storefronts::UPDATE_STOREFRONT,
    &storefronts::PUT_LISTING,
    &storefronts::DELETE_LISTING,
    &storefronts::LIST_LISTINGS,
    &storefronts::PUBLIC_PRODUCTS,
    &storefronts::PUBLIC_PRODUCT,
    &orders::CREATE_ORDER,
    &orders::LIST_ORDERS,
    &orders::GET_ORDER,
    &orders::LIST_ORDER_UNITS,
    &orders::CREATE_REFUND,
    &fulfillment::GET_GIFT,
    &fulfillment::ACCEPT_GIFT,
    &fulfillment::THANK_YOU,
    &fulfillment::LIST_UNITS,
    &fulfillment::FULFIL_UNITS,
    &fulfillment::CREATE_MANIFEST,
    &fulfillment::GET_MANIFEST,
    &shopify::INSTALL,
    &shopify::CALLBACK,
    &shopify::GET_CONNECTION,
    &shopify::SYNC,
    &billing::GET_TERMS,
    &billing::PUT_TERMS,
    &billing::LIST_STATEMENTS,
    &billing::GET_STATEMENT,
    &billing::CLOSE_CYCLE,
    &billing::RECORD_PAYOUT,
    &billing::ALL_STATEMENTS,
    &xero::CONNECT,
    &xero::CALLBACK,
    &xero::GET_CONNECTION,
    &plans::LIST_PLANS,
    &plans::GET_PLAN,
    &plans::CHECKOUT,
];

/// Webhook endpoints: each a function with its own function URL (no API Gateway route, no
/// authorizer: the provider's signature authenticates). The local gateway serves them on the
/// same port under their paths.
pub const WEBHOOKS: &[&RouteDef] = &[&orders::STRIPE_WEBHOOK, &shopify::WEBHOOK, &xero::WEBHOOK, &plans::WEBHOOK];

/// The route a function binary serves.
pub fn by_function(function: &str) -> Option<&'static RouteDef> {
    ALL.iter().chain(WEBHOOKS).copied().find(|r| r.function == function)
}
