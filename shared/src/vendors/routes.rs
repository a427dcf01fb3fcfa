//! HTTP handlers of the vendors domain, one `RouteDef` per Lambda function.

use super::dto::*;
use super::model::{ShippingRules, StorageSettings};
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PlatformCtx, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

const STAFF: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment];
const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];
/// Credentials: the vendor's owner (and a platform admin onboarding the vendor).
const OWNERS: &[Role] = &[Role::PlatformAdmin, Role::Owner];
const ANYONE_OF_THE_VENDOR: &[Role] =
    &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment, Role::Buyer];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Platform { run: |ctx| Box::pin(list_vendors(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

// ---------------------------------------------------------------- platform admin

pub const CREATE_VENDOR: RouteDef = RouteDef {
    function: "vendors-create",
    method: "POST",
    path: "/vendors",
    summary: "Onboard a vendor (platform admin)",
    handler: Handler::Platform { run: |ctx| Box::pin(create_vendor(ctx)) },
    request: Some(schema::<CreateVendorRequest>()),
    response: Some(schema::<VendorResponse>()),
    success: 201,
    idempotent: true,
    ..BASE
};

async fn create_vendor(ctx: PlatformCtx) -> HandlerResult {
    let req = ctx.input.json::<CreateVendorRequest>()?;
    let created = service::create_vendor(&ctx.app, &ctx.scope, req).await?;
    let location = format!("/vendors/{}", created.value.id);
    Ok(ApiResponse::json(201, &VendorResponse::from(created.value))?.with_etag(created.version).with_location(location))
}

pub const LIST_VENDORS: RouteDef = RouteDef {
    function: "vendors-list",
    path: "/vendors",
    summary: "List vendors, oldest first (platform admin)",
    response: Some(schema::<VendorList>()),
    paginated: true,
    ..BASE
};

async fn list_vendors(ctx: PlatformCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_vendors(&ctx.app, &ctx.scope, limit, cursor).await?)
}

pub const SUSPEND_VENDOR: RouteDef = RouteDef {
    function: "vendors-suspend",
    method: "POST",
    path: "/vendors/{vendorId}/suspend",
    summary: "Suspend a vendor: its staff keep read access, nothing is deleted (platform admin)",
    handler: Handler::Platform { run: |ctx| Box::pin(suspend_vendor(ctx)) },
    request: Some(schema::<SuspendVendorRequest>()),
    response: Some(schema::<VendorResponse>()),
    ..BASE
};

async fn suspend_vendor(ctx: PlatformCtx) -> HandlerResult {
    let req = ctx.input.json::<SuspendVendorRequest>()?;
    let vendor = ctx.input.path("vendorId")?;
    let saved = service::set_vendor_status(&ctx.app, &ctx.scope, vendor, Some(req.reason)).await?;
    Ok(ApiResponse::ok(&VendorResponse::from(saved.value))?.with_etag(saved.version))
}

pub const REACTIVATE_VENDOR: RouteDef = RouteDef {
    function: "vendors-reactivate",
    method: "POST",
    path: "/vendors/{vendorId}/reactivate",
    summary: "Lift a vendor's suspension (platform admin)",
    handler: Handler::Platform { run: |ctx| Box::pin(reactivate_vendor(ctx)) },
    response: Some(schema::<VendorResponse>()),
    ..BASE
};

async fn reactivate_vendor(ctx: PlatformCtx) -> HandlerResult {
    let vendor = ctx.input.path("vendorId")?;
    let saved = service::set_vendor_status(&ctx.app, &ctx.scope, vendor, None).await?;
    Ok(ApiResponse::ok(&VendorResponse::from(saved.value))?.with_etag(saved.version))
}

// ---------------------------------------------------------------- vendor profile

pub const GET_VENDOR: RouteDef = RouteDef {
    function: "vendors-get",
    path: "/vendors/{vendorId}",
    summary: "Read the vendor's profile",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(get_vendor(ctx)) },
    response: Some(schema::<VendorResponse>()),
    ..BASE
};

async fn get_vendor(ctx: TenantCtx) -> HandlerResult {
    let found = service::get_profile(&ctx.app, &ctx.scope).await?;
    Ok(ApiResponse::ok(&VendorResponse::from(found.value))?.with_etag(found.version))
}

pub const UPDATE_VENDOR: RouteDef = RouteDef {
    function: "vendors-update",
    method: "PATCH",
    path: "/vendors/{vendorId}",
    summary: "Update the vendor's profile (If-Match required)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(update_vendor(ctx)) },
    request: Some(schema::<UpdateVendorRequest>()),
    response: Some(schema::<VendorResponse>()),
    conditional: true,
    ..BASE
};

async fn update_vendor(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<UpdateVendorRequest>()?;
    let expected = ctx.input.require_if_match()?;
    let saved = service::update_profile(&ctx.app, &ctx.scope, expected, req).await?;
    Ok(ApiResponse::ok(&VendorResponse::from(saved.value))?.with_etag(saved.version))
}

// ---------------------------------------------------------------- shipping

pub const GET_SHIPPING: RouteDef = RouteDef {
    function: "shipping-get",
    path: "/vendors/{vendorId}/shipping",
    summary: "Read the vendor's shipping rules",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(get_shipping(ctx)) },
    response: Some(schema::<ShippingRules>()),
    ..BASE
};

async fn get_shipping(ctx: TenantCtx) -> HandlerResult {
    let found = service::get_shipping(&ctx.app, &ctx.scope).await?;
    Ok(ApiResponse::ok(&found.value)?.with_etag(found.version))
}

pub const PUT_SHIPPING: RouteDef = RouteDef {
    function: "shipping-put",
    method: "PUT",
    path: "/vendors/{vendorId}/shipping",
    summary: "Replace the vendor's shipping rules (If-Match once they exist)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(put_shipping(ctx)) },
    request: Some(schema::<ShippingRules>()),
    response: Some(schema::<ShippingRules>()),
    conditional: true,
    ..BASE
};

async fn put_shipping(ctx: TenantCtx) -> HandlerResult {
    let rules = ctx.input.json::<ShippingRules>()?;
    let expected = ctx.input.if_match()?;
    let saved = service::put_shipping(&ctx.app, &ctx.scope, expected, rules).await?;
    Ok(ApiResponse::ok(&saved.value)?.with_etag(saved.version))
}

pub const QUOTE_SHIPPING: RouteDef = RouteDef {
    function: "shipping-quote",
    method: "POST",
    path: "/vendors/{vendorId}/shipping/quote",
    summary: "Price shipping of a parcel to a country with the vendor's rules",
    handler: Handler::Tenant { roles: ANYONE_OF_THE_VENDOR, run: |ctx| Box::pin(quote_shipping(ctx)) },
    request: Some(schema::<QuoteRequest>()),
    response: Some(schema::<QuoteResponse>()),
    safe: true,
    ..BASE
};

async fn quote_shipping(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<QuoteRequest>()?;
    ApiResponse::ok(&service::quote_shipping(&ctx.app, &ctx.scope, req).await?)
}

// ---------------------------------------------------------------- SMTP

pub const GET_SMTP: RouteDef = RouteDef {
    function: "smtp-get",
    path: "/vendors/{vendorId}/smtp",
    summary: "Read the vendor's SMTP settings (the password only as configured: true)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(get_smtp(ctx)) },
    response: Some(schema::<SmtpSettingsResponse>()),
    ..BASE
};

async fn get_smtp(ctx: TenantCtx) -> HandlerResult {
    let found = service::get_smtp(&ctx.app, &ctx.scope).await?;
    Ok(ApiResponse::ok(&service::smtp_response(found.value))?.with_etag(found.version))
}

pub const PUT_SMTP: RouteDef = RouteDef {
    function: "smtp-put",
    method: "PUT",
    path: "/vendors/{vendorId}/smtp",
    summary: "Set the vendor's SMTP server; the password goes to Secrets Manager",
    handler: Handler::Tenant { roles: OWNERS, run: |ctx| Box::pin(put_smtp(ctx)) },
    request: Some(schema::<SmtpSettingsRequest>()),
    response: Some(schema::<SmtpSettingsResponse>()),
    conditional: true,
    ..BASE
};

async fn put_smtp(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<SmtpSettingsRequest>()?;
    let expected = ctx.input.if_match()?;
    let saved = service::put_smtp(&ctx.app, &ctx.scope, expected, req).await?;
    Ok(ApiResponse::ok(&service::smtp_response(saved.value))?.with_etag(saved.version))
}

// ---------------------------------------------------------------- Stripe

pub const GET_STRIPE: RouteDef = RouteDef {
    function: "stripe-get",
    path: "/vendors/{vendorId}/stripe",
    summary: "Read the vendor's Stripe settings (secrets only as configured: true)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(get_stripe(ctx)) },
    response: Some(schema::<StripeSettingsResponse>()),
    ..BASE
};

async fn get_stripe(ctx: TenantCtx) -> HandlerResult {
    let found = service::get_stripe(&ctx.app, &ctx.scope).await?;
    Ok(ApiResponse::ok(&service::stripe_response(found.value))?.with_etag(found.version))
}

pub const PUT_STRIPE: RouteDef = RouteDef {
    function: "stripe-put",
    method: "PUT",
    path: "/vendors/{vendorId}/stripe",
    summary: "Set the vendor's Stripe keys; secret key and webhook secret go to Secrets Manager",
    handler: Handler::Tenant { roles: OWNERS, run: |ctx| Box::pin(put_stripe(ctx)) },
    request: Some(schema::<StripeSettingsRequest>()),
    response: Some(schema::<StripeSettingsResponse>()),
    conditional: true,
    ..BASE
};

async fn put_stripe(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<StripeSettingsRequest>()?;
    let expected = ctx.input.if_match()?;
    let saved = service::put_stripe(&ctx.app, &ctx.scope, expected, req).await?;
    Ok(ApiResponse::ok(&service::stripe_response(saved.value))?.with_etag(saved.version))
}

// ---------------------------------------------------------------- storage

pub const GET_STORAGE: RouteDef = RouteDef {
    function: "storage-get",
    path: "/vendors/{vendorId}/storage",
    summary: "Read where the vendor's documents are stored",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(get_storage(ctx)) },
    response: Some(schema::<StorageSettings>()),
    ..BASE
};

async fn get_storage(ctx: TenantCtx) -> HandlerResult {
    let found = service::get_storage(&ctx.app, &ctx.scope).await?;
    Ok(ApiResponse::ok(&found.value)?.with_etag(found.version))
}

pub const PUT_STORAGE: RouteDef = RouteDef {
    function: "storage-put",
    method: "PUT",
    path: "/vendors/{vendorId}/storage",
    summary: "Set the S3 bucket and prefix for the vendor's documents",
    handler: Handler::Tenant { roles: OWNERS, run: |ctx| Box::pin(put_storage(ctx)) },
    request: Some(schema::<StorageSettingsRequest>()),
    response: Some(schema::<StorageSettings>()),
    conditional: true,
    ..BASE
};

async fn put_storage(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<StorageSettingsRequest>()?;
    let expected = ctx.input.if_match()?;
    let saved = service::put_storage(&ctx.app, &ctx.scope, expected, req).await?;
    Ok(ApiResponse::ok(&saved.value)?.with_etag(saved.version))
}
