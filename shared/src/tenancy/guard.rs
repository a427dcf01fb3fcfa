//! The guard: turns a request's verified claims into a scope, once, at the handler's edge.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::principal::{Principal, Role};
use super::scope::{InvalidVendorId, PlatformScope, TenantScope, VendorId};
use crate::error::ApiError;

/// Reads the JWT authorizer's claims from the API Gateway v2 request context. Locally the
/// gateway in `infra` verifies dev tokens and fills the same context, so this is the only
/// code path.
pub fn principal(req: &Request) -> Result<Principal, ApiError> {
    let claims = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()).map(|jwt| &jwt.claims)
        }
        _ => None,
    };
    let claims = claims.ok_or_else(|| ApiError::Unauthorized("a bearer token is required".to_owned()))?;
    Principal::from_claims(claims)
}

/// Scope for a route under `/vendors/{vendorId}`. Another vendor's id is answered as if it
/// did not exist (404), before the role is looked at, so ids of other tenants leak nothing.
pub fn tenant_scope(principal: &Principal, path_vendor: &str, allowed: &[Role]) -> Result<TenantScope, ApiError> {
    let not_found = || ApiError::NotFound(format!("vendor {path_vendor} not found"));
    let vendor_id = VendorId::parse(path_vendor).map_err(|_| not_found())?;
    if principal.role != Role::PlatformAdmin && principal.vendor_id.as_ref() != Some(&vendor_id) {
        return Err(not_found());
    }
    if !allowed.contains(&principal.role) {
        return Err(ApiError::Forbidden(format!("role {} may not use this route", principal.role)));
    }
    Ok(TenantScope::new(vendor_id, principal))
}

pub fn platform_scope(principal: &Principal) -> Result<PlatformScope, ApiError> {
    if principal.role != Role::PlatformAdmin {
        return Err(ApiError::Forbidden("this route is for platform admins".to_owned()));
    }
    Ok(PlatformScope::new(principal))
}

/// Scope for a job from its envelope's vendor id: the job runtime's edge, as the guard is the
/// HTTP handler's. A malformed id is refused (the message is then a permanent failure).
pub fn job_scope(vendor: &str, job_type: &str) -> Result<TenantScope, InvalidVendorId> {
    let principal = Principal { user_id: format!("job:{job_type}"), role: Role::System, vendor_id: None };
    Ok(TenantScope::new(VendorId::parse(vendor)?, &principal))
}

/// Read-only scope for a public storefront request, from the vendor a storefront lookup item
/// names: the storefront resolver's edge. Only the resolver calls it, with a vendor id read
/// from the global lookup, never from the request.
pub(crate) fn storefront_scope(vendor: &str) -> Result<TenantScope, InvalidVendorId> {
    let principal = Principal { user_id: "storefront-visitor".to_owned(), role: Role::Public, vendor_id: None };
    Ok(TenantScope::new(VendorId::parse(vendor)?, &principal))
}

/// The platform scope of a scheduled function (it lists the vendors to fan work out to):
/// the scheduler's edge, as the guard is the HTTP handler's.
pub fn schedule_scope(function: &str) -> PlatformScope {
    PlatformScope::new(&Principal { user_id: format!("schedule:{function}"), role: Role::System, vendor_id: None })
}

/// Scope for a recipient holding a gift's code, from the vendor the code's global claim names:
/// the gift resolver's edge (the code is the recipient's credential).
pub(crate) fn gift_scope(vendor: &str) -> Result<TenantScope, InvalidVendorId> {
    let principal = Principal { user_id: "gift-recipient".to_owned(), role: Role::Public, vendor_id: None };
    Ok(TenantScope::new(VendorId::parse(vendor)?, &principal))
}

/// Scope for a webhook addressed to one vendor (the vendor's id is in the endpoint's URL):
/// the webhook's edge. It is only used after the request's signature has been checked with
/// that vendor's own secret, which is what authenticates it.
pub(crate) fn webhook_scope(vendor: &str, provider: &str) -> Result<TenantScope, InvalidVendorId> {
    let principal = Principal { user_id: format!("webhook:{provider}"), role: Role::System, vendor_id: None };
    Ok(TenantScope::new(VendorId::parse(vendor)?, &principal))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(vendor: &str, role: Role) -> Principal {
        Principal { user_id: "u".into(), role, vendor_id: Some(VendorId::parse(vendor).unwrap()) }
    }

    #[test]
    fn other_vendors_ids_are_not_found_even_for_the_wrong_role() {
        let err = tenant_scope(&staff("a", Role::Buyer), "b", &[Role::Owner]).unwrap_err();
        assert_eq!(err.status(), 404);
        let err = tenant_scope(&staff("a", Role::Buyer), "a", &[Role::Owner]).unwrap_err();
        assert_eq!(err.status(), 403);
        let scope = tenant_scope(&staff("a", Role::Owner), "a", &[Role::Owner]).unwrap();
        assert_eq!(scope.vendor_id().as_str(), "a");
        assert_eq!(tenant_scope(&staff("a", Role::Owner), "A#x", &[Role::Owner]).unwrap_err().status(), 404);
    }

    #[test]
    fn platform_admins_reach_any_vendor_only_where_the_route_allows_them() {
        let admin = Principal { user_id: "p".into(), role: Role::PlatformAdmin, vendor_id: None };
        assert!(tenant_scope(&admin, "b", &[Role::PlatformAdmin, Role::Owner]).is_ok());
        assert_eq!(tenant_scope(&admin, "b", &[Role::Owner]).unwrap_err().status(), 403);
        assert!(platform_scope(&admin).is_ok());
        assert_eq!(platform_scope(&staff("a", Role::Owner)).unwrap_err().status(), 403);
    }
}
