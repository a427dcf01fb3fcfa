//! Request/response glue over `lambda_http`: one entry point (`handle`) shared by the Lambda
//! binaries (`serve`) and the local gateway, so both run the same guard and error mapping.

mod idempotency;
mod input;
mod output;
mod route;

pub use input::{Input, MAX_BODY_BYTES, nullable};
pub use lambda_http::Error as LambdaError;
pub use output::ApiResponse;
pub use route::{BoxFuture, Handler, HandlerResult, PlatformCtx, PublicCtx, RouteDef, SchemaRef, TenantCtx, schema};

use std::convert::Infallible;
use std::time::Instant;

use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use tracing::Instrument;

use crate::app::App;
use crate::error::ApiError;
use crate::jobs::idempotency::Owner;
use crate::tenancy::guard;

/// Runs one route as a Lambda function: init once per cold start, then serve invocations.
pub async fn serve(route: &'static RouteDef) -> Result<(), LambdaError> {
    crate::telemetry::init();
    let app = App::from_env()?;
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(&app, route, req).await) }
    }))
    .await
}

/// Guards, runs and renders one request. Never fails: every error becomes problem+json.
pub async fn handle(app: &App, route: &'static RouteDef, req: Request) -> Response<Body> {
    let request_id = req
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(crate::store::ids::new_id);
    let span = tracing::info_span!("request", request_id = %request_id, route = route.function, vendor_id = tracing::field::Empty);
    let started = Instant::now();
    let instance = req.uri().path().to_owned();
    async move {
        let result = run(app, route, req, request_id).await;
        let response = match result {
            Ok(ok) => ok.into_response(),
            Err(err) => {
                if let ApiError::Internal(cause) = &err {
                    tracing::error!(error = %cause, "request failed");
                }
                ApiResponse::problem(&err, Some(instance)).into_response()
            }
        };
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request done"
        );
        response
    }
    .instrument(span)
    .await
}

async fn run(app: &App, route: &'static RouteDef, req: Request, request_id: String) -> HandlerResult {
    if let Handler::Public { run } = route.handler {
        return run(PublicCtx { app: app.clone(), input: Input::from_request(req, request_id) }).await;
    }
    let principal = guard::principal(&req)?;
    let input = Input::from_request(req, request_id);
    match route.handler {
        Handler::Tenant { roles, run } => {
            let vendor = input.path("vendorId")?;
            let scope = guard::tenant_scope(&principal, vendor, roles)?;
            tracing::Span::current().record("vendor_id", scope.vendor_id().as_str());
            // Writes need a live vendor: a suspended vendor's staff keep read access only.
            let writable = match route.method != "GET" && !route.safe {
                true => Some(crate::vendors::service::ensure_writable(app, &scope, &principal).await?),
                false => None,
            };
            // Boxed: the handler's future is large, and it is nested once more below.
            let handled = Box::pin(async {
                match (route.idempotent, idempotency::key_of(&input)?) {
                    (true, Some(key)) => {
                        let owner = Owner::Tenant(&scope);
                        let response = idempotency::once(app, owner, route, &principal.user_id, &key, &input, async {
                            run(TenantCtx { app: app.clone(), scope: scope.clone(), input: input.clone() }).await
                        });
                        response.await
                    }
                    _ => run(TenantCtx { app: app.clone(), scope: scope.clone(), input: input.clone() }).await,
                }
            });
            match writable {
                // The handler reads the profile the guard read, not the table again.
                Some(profile) => crate::vendors::repo::with_request_profile(profile, handled).await,
                None => handled.await,
            }
        }
        Handler::Platform { run } => {
            let scope = guard::platform_scope(&principal)?;
            if let Ok(vendor) = input.path("vendorId") {
                tracing::Span::current().record("vendor_id", vendor);
            }
            match (route.idempotent, idempotency::key_of(&input)?) {
                (true, Some(key)) => {
                    let owner = Owner::Platform(&scope);
                    let response = idempotency::once(app, owner, route, &principal.user_id, &key, &input, async {
                        run(PlatformCtx { app: app.clone(), scope: scope.clone(), input: input.clone() }).await
                    });
                    response.await
                }
                _ => run(PlatformCtx { app: app.clone(), scope, input }).await,
            }
        }
        Handler::Public { .. } => Err(ApiError::internal("public routes are served above")),
    }
}
