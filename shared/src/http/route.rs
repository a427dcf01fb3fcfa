//! A route: its function name (= binary name), method and path as in `template.yaml`, who
//! may call it, its handler, and the schemas the OpenAPI document shows for it.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use utoipa::ToSchema;
use utoipa::openapi::{RefOr, Schema};

use super::{ApiResponse, Input};
use crate::app::App;
use crate::error::ApiError;
use crate::tenancy::{PlatformScope, Role, TenantScope};

pub type HandlerResult = Result<ApiResponse, ApiError>;
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a tenant route's handler receives: the scope the guard built, never a raw vendor id.
pub struct TenantCtx {
    pub app: App,
    pub scope: TenantScope,
    pub input: Input,
}

/// What a platform-admin route's handler receives.
pub struct PlatformCtx {
    pub app: App,
    pub scope: PlatformScope,
    pub input: Input,
}

/// What a public storefront route's handler receives: no scope; the handler resolves the
/// storefront (and so the vendor) from the path through the storefront resolver.
pub struct PublicCtx {
    pub app: App,
    pub input: Input,
}

/// The kinds of handler. The kind decides which scope the guard builds, so a tenant
/// handler cannot obtain the platform scope and vice versa.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Under `/vendors/{vendorId}`; `roles` may call it (platform admins only if listed).
    Tenant { roles: &'static [Role], run: fn(TenantCtx) -> BoxFuture<HandlerResult> },
    /// Platform admins only.
    Platform { run: fn(PlatformCtx) -> BoxFuture<HandlerResult> },
    /// No authentication (API Gateway route without authorizer): public storefront reads.
    Public { run: fn(PublicCtx) -> BoxFuture<HandlerResult> },
}

/// A type's OpenAPI name and schemas, captured as function pointers so routes stay `const`.
#[derive(Clone, Copy)]
pub struct SchemaRef {
    pub name: fn() -> Cow<'static, str>,
    pub collect: fn(&mut Vec<(String, RefOr<Schema>)>),
}

fn collect_schemas<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

pub const fn schema<T: ToSchema>() -> SchemaRef {
    SchemaRef { name: T::name, collect: collect_schemas::<T> }
}

#[derive(Clone, Copy)]
pub struct RouteDef {
    /// The Lambda function's binary name (`functions/src/bin/<function>.rs`).
    pub function: &'static str,
    pub method: &'static str,
    /// The API Gateway path, with `{param}` placeholders.
    pub path: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    pub request: Option<SchemaRef>,
    pub response: Option<SchemaRef>,
    /// The status of a successful answer.
    pub success: u16,
    /// Does the route take `If-Match` (and answer `ETag`)?
    pub conditional: bool,
    /// Does the route page with `cursor`/`limit`?
    pub paginated: bool,
    /// A POST that changes nothing (a quote): allowed while the vendor is suspended.
    pub safe: bool,
    /// A POST that creates: honours `Idempotency-Key`.
    pub idempotent: bool,
}

impl RouteDef {
    pub fn roles(&self) -> &'static [Role] {
        match self.handler {
            Handler::Tenant { roles, .. } => roles,
            Handler::Platform { .. } => &[Role::PlatformAdmin],
            Handler::Public { .. } => &[],
        }
    }

    pub fn is_public(&self) -> bool {
        matches!(self.handler, Handler::Public { .. })
    }
}
