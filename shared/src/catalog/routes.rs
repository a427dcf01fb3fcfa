//! HTTP handlers of the catalogue, one `RouteDef` per Lambda function.

use super::dto::*;
use super::service;
use crate::http::{ApiResponse, Handler, HandlerResult, RouteDef, TenantCtx, schema};
use crate::tenancy::Role;

const STAFF: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment];
const MANAGERS: &[Role] = &[Role::PlatformAdmin, Role::Owner, Role::Manager];

const BASE: RouteDef = RouteDef {
    function: "",
    method: "GET",
    path: "",
    summary: "",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(list_products(ctx)) },
    request: None,
    response: None,
    success: 200,
    conditional: false,
    paginated: false,
    safe: false,
    idempotent: false,
};

fn product_location(ctx: &TenantCtx, product_id: &str) -> String {
    format!("/vendors/{}/products/{product_id}", ctx.scope.vendor_id())
}

/// 200 with the product when the variants are in place; 202 when a job is generating them
/// (the body's `variant_generation` points to it).
fn product_answer(
    ctx: &TenantCtx,
    done: u16,
    product: crate::store::Versioned<super::model::Product>,
    job: Option<String>,
) -> HandlerResult {
    let status = if job.is_some() { 202 } else { done };
    let version = product.version;
    Ok(ApiResponse::json(status, &ProductResponse::new(product.value, ctx.scope.vendor_id().as_str()))?
        .with_etag(version))
}

pub const CREATE_PRODUCT: RouteDef = RouteDef {
    function: "products-create",
    method: "POST",
    path: "/vendors/{vendorId}/products",
    summary: "Create a product and generate its variants (202 with a job when more than 96 variants)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(create_product(ctx)) },
    request: Some(schema::<CreateProductRequest>()),
    response: Some(schema::<ProductResponse>()),
    success: 201,
    idempotent: true,
    ..BASE
};

async fn create_product(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<CreateProductRequest>()?;
    let (product, job) = service::create_product(&ctx.app, &ctx.scope, req).await?;
    let location = product_location(&ctx, &product.value.id);
    Ok(product_answer(&ctx, 201, product, job)?.with_location(location))
}

pub const LIST_PRODUCTS: RouteDef = RouteDef {
    function: "products-list",
    path: "/vendors/{vendorId}/products",
    summary: "List the vendor's products, oldest first",
    response: Some(schema::<ProductList>()),
    paginated: true,
    ..BASE
};

async fn list_products(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    ApiResponse::ok(&service::list_products(&ctx.app, &ctx.scope, limit, cursor).await?)
}

pub const GET_PRODUCT: RouteDef = RouteDef {
    function: "products-get",
    path: "/vendors/{vendorId}/products/{productId}",
    summary: "Read a product with its options",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(get_product(ctx)) },
    response: Some(schema::<ProductResponse>()),
    ..BASE
};

async fn get_product(ctx: TenantCtx) -> HandlerResult {
    let product = service::get_product(&ctx.app, &ctx.scope, ctx.input.path("productId")?).await?;
    product_answer(&ctx, 200, product, None)
}

pub const UPDATE_PRODUCT: RouteDef = RouteDef {
    function: "products-update",
    method: "PATCH",
    path: "/vendors/{vendorId}/products/{productId}",
    summary: "Update a product's details (If-Match required); options have their own route",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(update_product(ctx)) },
    request: Some(schema::<UpdateProductRequest>()),
    response: Some(schema::<ProductResponse>()),
    conditional: true,
    ..BASE
};

async fn update_product(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<UpdateProductRequest>()?;
    let expected = ctx.input.require_if_match()?;
    let product = service::update_product(&ctx.app, &ctx.scope, ctx.input.path("productId")?, expected, req).await?;
    product_answer(&ctx, 200, product, None)
}

pub const PUT_OPTIONS: RouteDef = RouteDef {
    function: "product-options-put",
    method: "PUT",
    path: "/vendors/{vendorId}/products/{productId}/options",
    summary: "Replace a product's options and regenerate its variants (If-Match; 202 with a job past 96 variant changes)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(put_options(ctx)) },
    request: Some(schema::<PutOptionsRequest>()),
    response: Some(schema::<ProductResponse>()),
    conditional: true,
    ..BASE
};

async fn put_options(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<PutOptionsRequest>()?;
    let expected = ctx.input.require_if_match()?;
    let (product, job) =
        service::put_options(&ctx.app, &ctx.scope, ctx.input.path("productId")?, expected, req).await?;
    product_answer(&ctx, 200, product, job)
}

pub const LIST_VARIANTS: RouteDef = RouteDef {
    function: "variants-list",
    path: "/vendors/{vendorId}/products/{productId}/variants",
    summary: "List a product's variants (active and archived), in creation order",
    handler: Handler::Tenant { roles: STAFF, run: |ctx| Box::pin(list_variants(ctx)) },
    response: Some(schema::<VariantList>()),
    paginated: true,
    ..BASE
};

async fn list_variants(ctx: TenantCtx) -> HandlerResult {
    let (limit, cursor) = ctx.input.page()?;
    let product_id = ctx.input.path("productId")?;
    ApiResponse::ok(&service::list_variants(&ctx.app, &ctx.scope, product_id, limit, cursor).await?)
}

pub const UPDATE_VARIANT: RouteDef = RouteDef {
    function: "variants-update",
    method: "PATCH",
    path: "/vendors/{vendorId}/products/{productId}/variants/{variantId}",
    summary: "Update a variant: SKU (unique per vendor), prices, stock, attributes (If-Match required)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(update_variant(ctx)) },
    request: Some(schema::<UpdateVariantRequest>()),
    response: Some(schema::<VariantResponse>()),
    conditional: true,
    ..BASE
};

async fn update_variant(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<UpdateVariantRequest>()?;
    let expected = ctx.input.require_if_match()?;
    let (product_id, variant_id) = (ctx.input.path("productId")?, ctx.input.path("variantId")?);
    let (variant, options) =
        service::update_variant(&ctx.app, &ctx.scope, product_id, variant_id, expected, req).await?;
    let version = variant.version;
    Ok(ApiResponse::ok(&VariantResponse::new(&options, variant.value))?.with_etag(version))
}

pub const CREATE_IMAGE: RouteDef = RouteDef {
    function: "images-create",
    method: "POST",
    path: "/vendors/{vendorId}/products/{productId}/images",
    summary: "Add an image: records it and returns a presigned upload URL for exactly its type and size",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(create_image(ctx)) },
    request: Some(schema::<CreateImageRequest>()),
    response: Some(schema::<ImageUpload>()),
    success: 201,
    ..BASE
};

async fn create_image(ctx: TenantCtx) -> HandlerResult {
    let req = ctx.input.json::<CreateImageRequest>()?;
    let upload = service::create_image(&ctx.app, &ctx.scope, ctx.input.path("productId")?, req).await?;
    ApiResponse::json(201, &upload)
}

pub const CONFIRM_IMAGE: RouteDef = RouteDef {
    function: "images-confirm",
    method: "POST",
    path: "/vendors/{vendorId}/products/{productId}/images/{imageId}/confirm",
    summary: "Mark an uploaded image ready (checks the object's type and size)",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(confirm_image(ctx)) },
    response: Some(schema::<ProductResponse>()),
    ..BASE
};

async fn confirm_image(ctx: TenantCtx) -> HandlerResult {
    let (product, image) = (ctx.input.path("productId")?, ctx.input.path("imageId")?);
    let product = service::confirm_image(&ctx.app, &ctx.scope, product, image).await?;
    product_answer(&ctx, 200, product, None)
}

pub const DELETE_IMAGE: RouteDef = RouteDef {
    function: "images-delete",
    method: "DELETE",
    path: "/vendors/{vendorId}/products/{productId}/images/{imageId}",
    summary: "Remove an image from a product and delete its object",
    handler: Handler::Tenant { roles: MANAGERS, run: |ctx| Box::pin(delete_image(ctx)) },
    success: 204,
    ..BASE
};

async fn delete_image(ctx: TenantCtx) -> HandlerResult {
    let (product, image) = (ctx.input.path("productId")?, ctx.input.path("imageId")?);
    service::delete_image(&ctx.app, &ctx.scope, product, image).await?;
    Ok(ApiResponse::no_content())
}
