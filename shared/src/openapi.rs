//! The OpenAPI 3.1 document, built from the route list and the request/response types, so
//! it cannot drift from the code. The local stack serves it at `/openapi.json`; the
//! committed `openapi.json` is checked against it by the test suite.

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, ObjectBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, Required, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{FieldError, Problem};
use crate::http::{MAX_BODY_BYTES, RouteDef};

const SECURITY: &str = "cognito_jwt";
const PROBLEM: &str = "application/problem+json";

fn method(route: &RouteDef) -> HttpMethod {
    match route.method {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM, Content::new(Some(Ref::from_schema_name(Problem::name()))))
        .build()
}

fn string_param(
    name: &str,
    location: ParameterIn,
    required: bool,
    description: &str,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(if required { Required::True } else { Required::False })
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

fn operation(
    route: &RouteDef,
    schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::Schema>)>,
) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new().operation_id(Some(route.function)).summary(Some(route.summary)).tag(
        if route.is_public() {
            "storefront"
        } else if route.path == "/vendors" || route.path.ends_with("suspend") || route.path.ends_with("reactivate") {
            "platform"
        } else {
            "vendor"
        },
    );
    op = if route.is_public() {
        op.description(Some("Public: no authentication; the storefront's slug (or host) resolves the vendor."))
    } else {
        op.security(SecurityRequirement::new(SECURITY, ["bestow/api"])).description(Some(format!(
            "Roles: {}.",
            route.roles().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        )))
    };
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            op = op.parameter(string_param(name, ParameterIn::Path, true, "Another vendor's id is answered with 404."));
        }
    }
    if route.paginated {
        op = op
            .parameter(string_param(
                "cursor",
                ParameterIn::Query,
                false,
                "Opaque cursor from the previous page's next_cursor.",
            ))
            .parameter(string_param("limit", ParameterIn::Query, false, "Page size, 1 to 100 (default 25)."));
    }
    if route.idempotent {
        op = op.parameter(string_param(
            "Idempotency-Key",
            ParameterIn::Header,
            false,
            "Makes a retry safe: the same key and body replay the first response (Idempotent-Replayed: true); another body is 422; while the first runs, 409. Kept 24 h.",
        ));
    }
    if route.conditional {
        op = op.parameter(string_param(
            "If-Match",
            ParameterIn::Header,
            false,
            "The ETag last read; required once the resource exists (428 without it, 412 when stale).",
        ));
    }
    if let Some(request) = route.request {
        (request.collect)(schemas);
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .description(Some(format!("JSON, at most {MAX_BODY_BYTES} bytes.")))
                .content("application/json", Content::new(Some(Ref::from_schema_name((request.name)()))))
                .build(),
        ));
    }
    let mut success = ResponseBuilder::new().description("Success");
    if let Some(response) = route.response {
        (response.collect)(schemas);
        success = success.content("application/json", Content::new(Some(Ref::from_schema_name((response.name)()))));
    }
    if route.conditional || route.response.is_some() && !route.paginated {
        success = success.header("ETag", Header::new(ObjectBuilder::new().schema_type(Type::String)));
    }
    op = op
        .response(route.success.to_string(), success.build())
        .response("400", problem("Malformed request (broken JSON, bad cursor)"))
        .response("401", problem("No valid access token"))
        .response("403", problem("The caller's role may not use this route"))
        .response("404", problem("Not found (also for another vendor's ids)"))
        .response("500", problem("Internal error (details are logged, not returned)"));
    if route.request.is_some() {
        op = op
            .response("413", problem("Body too large"))
            .response("415", problem("Body is not application/json"))
            .response("422", problem("Body of the wrong shape or invalid values; `errors` names each field"));
    }
    if route.method != "GET" && !route.safe {
        op = op.response("409", problem("Conflicts with existing data"));
    }
    if route.conditional {
        op = op
            .response("412", problem("If-Match is stale: the resource changed"))
            .response("428", problem("If-Match is required"));
    }
    op.build()
}

/// The whole document for `routes`.
pub fn document(routes: &[&RouteDef]) -> OpenApi {
    let mut schemas = vec![
        (Problem::name().into_owned(), Problem::schema()),
        (FieldError::name().into_owned(), FieldError::schema()),
    ];
    let mut paths = PathsBuilder::new();
    for route in routes {
        let op = operation(route, &mut schemas);
        paths = paths.path(route.path, PathItem::new(method(route), op));
    }
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            SECURITY,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Cognito access token with the bestow/api scope; role in cognito:groups, vendor in custom:vendor_id"))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Bestow API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Multi-tenant B2B gifting engine. Errors are RFC 9457 problem+json."))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// The document as pretty JSON (what `openapi.json` holds).
pub fn to_json(routes: &[&RouteDef]) -> String {
    document(routes).to_pretty_json().unwrap_or_default() + "\n"
}
