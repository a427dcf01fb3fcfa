//! The verified caller, as the API Gateway JWT authorizer describes it.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::scope::VendorId;
use crate::error::ApiError;

/// A caller's role. Staff roles belong to one vendor; `platform_admin` to none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    PlatformAdmin,
    Owner,
    Manager,
    Fulfillment,
    Buyer,
    /// A job running for a vendor; never granted by a token (not in `PRECEDENCE`).
    System,
    /// An anonymous visitor of a storefront, resolved from the storefront's slug or host;
    /// never granted by a token.
    Public,
}

impl Role {
    /// Highest privilege first: a user in several groups acts with the first that matches.
    const PRECEDENCE: [Role; 5] = [Role::PlatformAdmin, Role::Owner, Role::Manager, Role::Fulfillment, Role::Buyer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Fulfillment => "fulfillment",
            Role::Buyer => "buyer",
            Role::System => "system",
            Role::Public => "public",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Claims the guard reads. Cognito puts groups in `cognito:groups`; a pre-token-generation
/// trigger adds `custom:vendor_id` to access tokens (see README, "Identity").
pub const CLAIM_SUBJECT: &str = "sub";
pub const CLAIM_GROUPS: &str = "cognito:groups";
pub const CLAIM_VENDOR: &str = "custom:vendor_id";
pub const CLAIM_TOKEN_USE: &str = "token_use";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub role: Role,
    /// `None` only for platform admins.
    pub vendor_id: Option<VendorId>,
}

impl Principal {
    /// Reads the authorizer's claims. Values arrive as strings; array claims such as
    /// `cognito:groups` arrive as one string like `"[owner manager]"`.
    pub fn from_claims(claims: &HashMap<String, String>) -> Result<Self, ApiError> {
        let unauthorized = |why: &str| ApiError::Unauthorized(why.to_owned());
        if claims.get(CLAIM_TOKEN_USE).is_some_and(|use_| use_ != "access") {
            return Err(unauthorized("an access token is required"));
        }
        let user_id = claims
            .get(CLAIM_SUBJECT)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| unauthorized("the token has no subject"))?
            .clone();
        let groups = claims.get(CLAIM_GROUPS).map(|g| parse_array_claim(g)).unwrap_or_default();
        let role = Role::PRECEDENCE
            .into_iter()
            .find(|role| groups.iter().any(|g| g == role.as_str()))
            .ok_or_else(|| ApiError::Forbidden("the caller has no Bestow role".to_owned()))?;
        let vendor_id = match (role, claims.get(CLAIM_VENDOR).filter(|v| !v.is_empty())) {
            (Role::PlatformAdmin, _) => None,
            (_, Some(raw)) => {
                Some(VendorId::parse(raw).map_err(|_| unauthorized("the token's vendor claim is invalid"))?)
            }
            (_, None) => {
                return Err(ApiError::Forbidden("the caller belongs to no vendor".to_owned()));
            }
        };
        Ok(Self { user_id, role, vendor_id })
    }
}

/// `"[a b]"`, `"a b"`, `"a,b"` and `'["a","b"]'` all give `["a", "b"]`.
fn parse_array_claim(raw: &str) -> Vec<String> {
    raw.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|part| part.trim_matches('"'))
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn array_claims_in_every_shape_the_authorizer_sends() {
        assert_eq!(parse_array_claim("[owner manager]"), ["owner", "manager"]);
        assert_eq!(parse_array_claim("owner"), ["owner"]);
        assert_eq!(parse_array_claim("[\"owner\",\"buyer\"]"), ["owner", "buyer"]);
        assert!(parse_array_claim("[]").is_empty());
    }

    #[test]
    fn highest_role_wins_and_staff_need_a_vendor() {
        let p = Principal::from_claims(&claims(&[
            ("sub", "u1"),
            ("cognito:groups", "[fulfillment owner]"),
            ("custom:vendor_id", "v1"),
        ]))
        .unwrap();
        assert_eq!(p.role, Role::Owner);
        assert_eq!(p.vendor_id.unwrap().as_str(), "v1");

        let err = Principal::from_claims(&claims(&[("sub", "u1"), ("cognito:groups", "[owner]")])).unwrap_err();
        assert_eq!(err.status(), 403);

        let admin = Principal::from_claims(&claims(&[("sub", "a"), ("cognito:groups", "[platform_admin]")])).unwrap();
        assert_eq!(admin.vendor_id, None);
    }

    #[test]
    fn id_tokens_and_unknown_groups_are_refused() {
        let id_token =
            claims(&[("sub", "u"), ("cognito:groups", "[owner]"), ("custom:vendor_id", "v"), ("token_use", "id")]);
        assert_eq!(Principal::from_claims(&id_token).unwrap_err().status(), 401);
        let stranger = claims(&[("sub", "u"), ("cognito:groups", "[admins]"), ("custom:vendor_id", "v")]);
        assert_eq!(Principal::from_claims(&stranger).unwrap_err().status(), 403);
        assert_eq!(Principal::from_claims(&claims(&[])).unwrap_err().status(), 401);
    }
}
