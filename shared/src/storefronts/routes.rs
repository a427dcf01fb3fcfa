//! HTTP handlers of storefronts, listings and the public catalogue.

use super::dto::*;
use super::model::ListingOverride;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, PublicCtx, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

const STAFF: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment];
const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(list_storefronts(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

pub const CREATE_STOREFRONT: RouteDef = RouteDef {
    function: "storefronts-create",
    method: "POST",
    path: "/vendors/{vendorId}/storefronts",
    summary: "Create a storefront (slug and host unique platform-wide)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(create_storefront(ctx)) },
    request: Some(schema::<CreateStorefrontRequest>()),
    response: Some(schema::<StorefrontResponse>()),
    success: 201,
    idempotent: true,
    ..BASE
};

async fn create_storefront(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<CreateStorefrontRequest>()?;
    let created = service::create_storefront(&ctx.app, &ctx.scope, req).await?;
    let location = format!("/vendors/{}/storefronts/{}", ctx.scope.vendor_id(), created.value.id);
    Ok(ApiResponse::json(201, &StorefrontResponse::from(created.value))?
        .with_etag(created.version)
        .with_location(location))
}

pub const LIST_STOREFRONTS: RouteDef = RouteDef {
    function: "storefronts-list",
    path: "/vendors/{vendorId}/storefronts",
    summary: "List the vendor's storefronts",
    response: Some(schema::<StorefrontList>()),
    paginated: true,
    ..BASE
};

async fn list_storefronts(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_storefronts(&ctx.app, &ctx.scope, limit, cursor).await?)
}

pub const GET_STOREFRONT: RouteDef = RouteDef {
    function: "storefronts-get",
    path: "/vendors/{vendorId}/storefronts/{storefrontId}",
    summary: "Read a storefront",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(get_storefront(ctx)) },
    response: Some(schema::<StorefrontResponse>()),
    ..BASE
};

async fn get_storefront(ctx: TenantCtx) -> HandlerResult {
    let found = service::get_storefront(&ctx.app, &ctx.scope, ctx.input.path("storefrontId")?).await?;
    Ok(ApiResponse::ok(&StorefrontResponse::from(found.value))?.with_etag(found.version))
}

pub const UPDATE_STOREFRONT: RouteDef = RouteDef {
    function: "storefronts-update",
    method: "PATCH",
    path: "/vendors/{vendorId}/storefronts/{storefrontId}",
    summary: "Update a storefront: name, slug, host, branding, status (If-Match required)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(update_storefront(ctx)) },
    request: Some(schema::<UpdateStorefrontRequest>()),
    response: Some(schema::<StorefrontResponse>()),
    conditional: true,
    ..BASE
};

async fn update_storefront(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<UpdateStorefrontRequest>()?;
    let expected = ctx.input.require_if_match()?;
    let saved =
        service::update_storefront(&ctx.app, &ctx.scope, ctx.input.path("storefrontId")?, expected, req).await?;
    Ok(ApiResponse::ok(&StorefrontResponse::from(saved.value))?.with_etag(saved.version))
}

pub const PUT_LISTING: RouteDef = RouteDef {
    function: "listings-put",
    method: "PUT",
    path: "/vendors/{vendorId}/storefronts/{storefrontId}/products/{productId}",
    summary: "List a product on a storefront with its overrides, or replace them (If-Match when listed)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(put_listing(ctx)) },
    request: Some(schema::<ListingOverride>()),
    response: Some(schema::<ListingResponse>()),
    conditional: true,
    ..BASE
};

async fn put_listing(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<ListingOverride>()?;
    let expected = ctx.input.if_match()?;
    let (storefront, product) = (ctx.input.path("storefrontId")?, ctx.input.path("productId")?);
    let (listing, created) = service::put_listing(&ctx.app, &ctx.scope, storefront, product, expected, req).await?;
    let version = listing.version;
    Ok(ApiResponse::json(if created { 201 } else { 200 }, &ListingResponse::from(listing.value))?.with_etag(version))
}

pub const DELETE_LISTING: RouteDef = RouteDef {
    function: "listings-delete",
    method: "DELETE",
    path: "/vendors/{vendorId}/storefronts/{storefrontId}/products/{productId}",
    summary: "Take a product off a storefront",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(delete_listing(ctx)) },
    success: 204,
    ..BASE
};

async fn delete_listing(ctx: TenantCtx) -> HandlerResult {
    let (storefront, product) = (ctx.input.path("storefrontId")?, ctx.input.path("productId")?);
    service::delete_listing(&ctx.app, &ctx.scope, storefront, product).await?;
    Ok(ApiResponse::no_content())
}

pub const LIST_LISTINGS: RouteDef = RouteDef {
    function: "listings-list",
    path: "/vendors/{vendorId}/storefronts/{storefrontId}/products",
    summary: "A storefront's listings with their overrides and cards (listed or not)",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(list_listings(ctx)) },
    response: Some(schema::<ListingList>()),
    paginated: true,
    ..BASE
};

async fn list_listings(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(
        &service::list_listings(&ctx.app, &ctx.scope, ctx.input.path("storefrontId")?, limit, cursor).await?,
    )
}

// ---------------------------------------------------------------- public

pub const PUBLIC_PRODUCTS: RouteDef = RouteDef {
    function: "storefront-products-list",
    path: "/storefronts/{storefront}/products",
    summary: "A storefront's products as it shows them (public; slug or host)",
    handler: Handler::Public { run: |ctx| Box::pin(public_products(ctx)) },
    response: Some(schema::<PublicProductList>()),
    paginated: true,
    ..BASE
};

async fn public_products(ctx: PublicCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::public_products(&ctx.app, ctx.input.path("storefront")?, limit, cursor).await?)
}

pub const PUBLIC_PRODUCT: RouteDef = RouteDef {
    function: "storefront-products-get",
    path: "/storefronts/{storefront}/products/{productId}",
    summary: "One product as the storefront shows it, with its visible variants and stock state (public)",
    handler: Handler::Public { run: |ctx| Box::pin(public_product(ctx)) },
    response: Some(schema::<PublicProduct>()),
    ..BASE
};

async fn public_product(ctx: PublicCtx) -> HandlerResult {
    let (storefront, product) = (ctx.input.path("storefront")?, ctx.input.path("productId")?);
    ApiResponse::ok(&service::public_product(&ctx.app, storefront, product).await?)
}
