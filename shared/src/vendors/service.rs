//! Use cases of the vendors domain: validation first, then the writes.

use super::dto::*;
use super::model::*;
use super::repo::{ConfigItem, VendorDirectory, VendorRepo};
use crate::app::App;
use crate::error::{ApiError, FieldError};
use crate::store::{Cursor, StoreError, Versioned, ids};
use crate::tenancy::{PlatformScope, Principal, Role, TenantScope, VendorId};

pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn vendor_not_found(scope: &TenantScope) -> ApiError {
    ApiError::NotFound(format!("vendor {} not found", scope.vendor_id()))
}

/// Maps a failed conditional write of a resource the caller read at `expected`.
fn write_conflict(err: StoreError, what: &str, expected: Option<u64>) -> ApiError {
    match (err, expected) {
        (StoreError::ConditionFailed | StoreError::TransactionConditionFailed { .. }, Some(_)) => {
            ApiError::PreconditionFailed(format!("the {what} changed since you read it; read it again"))
        }
        (StoreError::ConditionFailed | StoreError::TransactionConditionFailed { .. }, None) => {
            ApiError::PreconditionRequired(format!("the {what} exists: send If-Match with its ETag"))
        }
        (other, _) => other.into(),
    }
}

/// Before any write of a tenant route: the vendor exists, and its staff may write only
/// while it is active (platform admins may still repair a suspended vendor).
/// Returns the profile read, which the request's handler then reuses.
pub async fn ensure_writable(
    app: &App,
    scope: &TenantScope,
    principal: &Principal,
) -> Result<Versioned<Vendor>, ApiError> {
    let profile = VendorRepo::new(&app.table, scope).profile().await?.ok_or_else(|| vendor_not_found(scope))?;
    if profile.value.status == VendorStatus::Suspended && principal.role != Role::PlatformAdmin {
        return Err(ApiError::Forbidden("the vendor is suspended: its configuration is read-only".to_owned()));
    }
    Ok(profile)
}

// ---------------------------------------------------------------- platform: vendors

fn validate_profile(v: &Vendor) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_name(&v.name, "/name", &mut errors);
    if let Some(legal) = &v.legal_name {
        check_name(legal, "/legal_name", &mut errors);
    }
    check_email(&v.contact_email, "/contact_email", &mut errors);
    if !is_country(&v.country) {
        errors.push(FieldError::new("/country", format!("{} is not an ISO 3166-1 alpha-2 country code", v.country)));
    }
    if !is_currency(&v.currency) {
        errors.push(FieldError::new("/currency", format!("{} is not a supported ISO 4217 currency", v.currency)));
    }
    check_timezone(&v.timezone, "/timezone", &mut errors);
    errors
}

pub async fn create_vendor(
    app: &App,
    platform: &PlatformScope,
    req: CreateVendorRequest,
) -> Result<Versioned<Vendor>, ApiError> {
    let id = req.id.unwrap_or_else(ids::new_id);
    let mut errors = Vec::new();
    let vendor_id = VendorId::parse(&id).map_err(|e| errors.push(FieldError::new("/id", e.to_string()))).ok();
    let now = now_rfc3339();
    let vendor = Vendor {
        id: id.clone(),
        name: req.name,
        legal_name: req.legal_name,
        contact_email: req.contact_email,
        country: req.country,
        currency: req.currency,
        timezone: req.timezone.unwrap_or_else(|| "UTC".to_owned()),
        status: VendorStatus::Active,
        suspended_reason: None,
        created_at: now.clone(),
        updated_at: now,
    };
    errors.extend(validate_profile(&vendor));
    ApiError::reject_if_any(errors)?;
    let Some(vendor_id) = vendor_id else {
        return Err(ApiError::internal("vendor id validated but absent"));
    };
    let scope = platform.tenant(vendor_id);
    let version = VendorRepo::new(&app.table, &scope).save_profile(&vendor, None).await.map_err(|err| match err {
        StoreError::TransactionConditionFailed { .. } => {
            ApiError::Conflict(format!("a vendor with id {id} already exists"))
        }
        other => other.into(),
    })?;
    tracing::info!(vendor_id = %id, "vendor created");
    Ok(Versioned { value: vendor, version })
}

pub async fn list_vendors(
    app: &App,
    platform: &PlatformScope,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<VendorList, ApiError> {
    let (items, next) = VendorDirectory::new(&app.table, platform).list(limit, cursor.as_ref()).await?;
    Ok(VendorList { items, next_cursor: next.map(|c| c.encode()) })
}

/// Suspends (`Some(reason)`) or reactivates (`None`) a vendor. Idempotent: setting the
/// status it already has changes nothing.
pub async fn set_vendor_status(
    app: &App,
    platform: &PlatformScope,
    vendor: &str,
    suspend_reason: Option<String>,
) -> Result<Versioned<Vendor>, ApiError> {
    if let Some(reason) = &suspend_reason {
        let mut errors = Vec::new();
        check_name(reason, "/reason", &mut errors);
        ApiError::reject_if_any(errors)?;
    }
    let not_found = || ApiError::NotFound(format!("vendor {vendor} not found"));
    let scope = platform.tenant(VendorId::parse(vendor).map_err(|_| not_found())?);
    let repo = VendorRepo::new(&app.table, &scope);
    let Versioned { value: mut current, version } = repo.profile().await?.ok_or_else(not_found)?;
    let status = if suspend_reason.is_some() { VendorStatus::Suspended } else { VendorStatus::Active };
    if current.status == status && current.suspended_reason == suspend_reason {
        return Ok(Versioned { value: current, version });
    }
    current.status = status;
    current.suspended_reason = suspend_reason;
    current.updated_at = now_rfc3339();
    let version =
        repo.save_profile(&current, Some(version)).await.map_err(|e| write_conflict(e, "vendor", Some(version)))?;
    tracing::info!(vendor_id = %vendor, status = ?status, "vendor status changed");
    Ok(Versioned { value: current, version })
}

// ---------------------------------------------------------------- tenant: profile

pub async fn get_profile(app: &App, scope: &TenantScope) -> Result<Versioned<Vendor>, ApiError> {
    VendorRepo::new(&app.table, scope).profile().await?.ok_or_else(|| vendor_not_found(scope))
}

pub async fn update_profile(
    app: &App,
    scope: &TenantScope,
    expected: u64,
    req: UpdateVendorRequest,
) -> Result<Versioned<Vendor>, ApiError> {
    let repo = VendorRepo::new(&app.table, scope);
    let current = repo.profile().await?.ok_or_else(|| vendor_not_found(scope))?;
    if current.version != expected {
        return Err(ApiError::PreconditionFailed("the vendor changed since you read it; read it again".to_owned()));
    }
    let mut vendor = current.value;
    if let Some(v) = req.name {
        vendor.name = v
    }
    if let Some(v) = req.legal_name {
        vendor.legal_name = Some(v)
    }
    if let Some(v) = req.contact_email {
        vendor.contact_email = v
    }
    if let Some(v) = req.country {
        vendor.country = v
    }
    if let Some(v) = req.currency {
        vendor.currency = v
    }
    if let Some(v) = req.timezone {
        vendor.timezone = v
    }
    ApiError::reject_if_any(validate_profile(&vendor))?;
    vendor.updated_at = now_rfc3339();
    let version =
        repo.save_profile(&vendor, Some(expected)).await.map_err(|e| write_conflict(e, "vendor", Some(expected)))?;
    Ok(Versioned { value: vendor, version })
}

// ---------------------------------------------------------------- tenant: configuration

async fn read_config<T: ConfigItem>(app: &App, scope: &TenantScope, what: &str) -> Result<Versioned<T>, ApiError> {
    VendorRepo::new(&app.table, scope)
        .config::<T>()
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{what} are not configured for vendor {}", scope.vendor_id())))
}

/// Checks `If-Match` against what is stored before anything (a secret included) is written.
async fn check_version<T: ConfigItem>(
    app: &App,
    scope: &TenantScope,
    expected: Option<u64>,
    what: &str,
) -> Result<Option<Versioned<T>>, ApiError> {
    let current = VendorRepo::new(&app.table, scope).config::<T>().await?;
    match (&current, expected) {
        (None, None) => Ok(current),
        (Some(c), Some(v)) if c.version == v => Ok(current),
        (Some(_), None) => {
            Err(ApiError::PreconditionRequired(format!("the {what} exist: send If-Match with their ETag")))
        }
        _ => Err(ApiError::PreconditionFailed(format!("the {what} changed since you read them; read them again"))),
    }
}

/// The stored item for a write that passed `If-Match`. Field errors win over version errors:
/// a request is judged on its content first, and nothing is written until both pass.
async fn current_for_write<T: ConfigItem>(
    app: &App,
    scope: &TenantScope,
    expected: Option<u64>,
    what: &str,
    errors: &[FieldError],
) -> Result<Option<Versioned<T>>, ApiError> {
    match check_version::<T>(app, scope, expected, what).await {
        Err(_) if !errors.is_empty() => Err(ApiError::validation(errors.to_vec())),
        other => other,
    }
}

async fn write_config<T: ConfigItem>(
    app: &App,
    scope: &TenantScope,
    value: &T,
    expected: Option<u64>,
    what: &str,
) -> Result<u64, ApiError> {
    VendorRepo::new(&app.table, scope).put_config(value, expected).await.map_err(|e| write_conflict(e, what, expected))
}

pub async fn get_shipping(app: &App, scope: &TenantScope) -> Result<Versioned<ShippingRules>, ApiError> {
    read_config(app, scope, "shipping rules").await
}

pub async fn put_shipping(
    app: &App,
    scope: &TenantScope,
    expected: Option<u64>,
    rules: ShippingRules,
) -> Result<Versioned<ShippingRules>, ApiError> {
    ApiError::reject_if_any(rules.validate())?;
    let version = write_config(app, scope, &rules, expected, "shipping rules").await?;
    Ok(Versioned { value: rules, version })
}

pub async fn quote_shipping(app: &App, scope: &TenantScope, req: QuoteRequest) -> Result<QuoteResponse, ApiError> {
    let mut errors = Vec::new();
    if !is_country(&req.country) {
        errors.push(FieldError::new("/country", format!("{} is not an ISO 3166-1 alpha-2 country code", req.country)));
    }
    if !(0..=MAX_AMOUNT).contains(&req.weight_grams) {
        errors.push(FieldError::new("/weight_grams", format!("must be from 0 to {MAX_AMOUNT}")));
    }
    if !(0..=MAX_AMOUNT).contains(&req.order_value_minor) {
        errors.push(FieldError::new("/order_value_minor", format!("must be from 0 to {MAX_AMOUNT}")));
    }
    ApiError::reject_if_any(errors)?;
    let rules = get_shipping(app, scope).await?.value;
    let options = rules.quote(&req.country, req.weight_grams, req.order_value_minor);
    Ok(QuoteResponse { country: req.country, options })
}

pub fn smtp_response(s: SmtpSettings) -> SmtpSettingsResponse {
    SmtpSettingsResponse {
        host: s.host,
        port: s.port,
        username: s.username,
        password: Configured { configured: s.password.is_some() },
        from_email: s.from_email,
        from_name: s.from_name,
        security: s.security,
        updated_at: s.updated_at,
    }
}

pub async fn get_smtp(app: &App, scope: &TenantScope) -> Result<Versioned<SmtpSettings>, ApiError> {
    read_config(app, scope, "SMTP settings").await
}

pub async fn put_smtp(
    app: &App,
    scope: &TenantScope,
    expected: Option<u64>,
    req: SmtpSettingsRequest,
) -> Result<Versioned<SmtpSettings>, ApiError> {
    let mut errors = Vec::new();
    check_host(&req.host, "/host", &mut errors);
    if req.port == 0 {
        errors.push(FieldError::new("/port", "must be from 1 to 65535"));
    }
    if req.username.is_empty() || req.username.len() > 256 {
        errors.push(FieldError::new("/username", "1-256 characters"));
    }
    check_email(&req.from_email, "/from_email", &mut errors);
    check_name(&req.from_name, "/from_name", &mut errors);
    if req.password.as_ref().is_some_and(|p| p.expose().is_empty() || p.expose().len() > 512) {
        errors.push(FieldError::new("/password", "1-512 characters"));
    }
    let current = current_for_write::<SmtpSettings>(app, scope, expected, "SMTP settings", &errors).await?;
    let stored_password = current.and_then(|c| c.value.password);
    if req.password.is_none() && stored_password.is_none() {
        errors.push(FieldError::new("/password", "required the first time SMTP is configured"));
    }
    ApiError::reject_if_any(errors)?;
    let password = match req.password {
        Some(password) => Some(app.secrets.put(scope, &SmtpCredentials { password }).await?),
        None => stored_password,
    };
    let settings = SmtpSettings {
        host: req.host,
        port: req.port,
        username: req.username,
        from_email: req.from_email,
        from_name: req.from_name,
        security: req.security,
        password,
        updated_at: now_rfc3339(),
    };
    let version = write_config(app, scope, &settings, expected, "SMTP settings").await?;
    Ok(Versioned { value: settings, version })
}

pub fn stripe_response(s: StripeSettings) -> StripeSettingsResponse {
    StripeSettingsResponse {
        publishable_key: s.publishable_key,
        mode: s.mode,
        secret_key: Configured { configured: s.secrets.is_some() },
        webhook_secret: Configured { configured: s.secrets.is_some() },
        updated_at: s.updated_at,
    }
}

pub async fn get_stripe(app: &App, scope: &TenantScope) -> Result<Versioned<StripeSettings>, ApiError> {
    read_config(app, scope, "Stripe settings").await
}

pub async fn put_stripe(
    app: &App,
    scope: &TenantScope,
    expected: Option<u64>,
    req: StripeSettingsRequest,
) -> Result<Versioned<StripeSettings>, ApiError> {
    let mut errors = Vec::new();
    let mode = stripe_key_mode(&req.publishable_key, &["pk"]);
    if mode.is_none() {
        errors.push(FieldError::new("/publishable_key", "must be a Stripe publishable key (pk_test_… or pk_live_…)"));
    }
    if let Some(secret) = &req.secret_key {
        match stripe_key_mode(secret.expose(), &["sk", "rk"]) {
            None => {
                errors.push(FieldError::new("/secret_key", "must be a Stripe secret or restricted key (sk_… or rk_…)"))
            }
            Some(m) if mode.is_some_and(|mode| mode != m) => errors
                .push(FieldError::new("/secret_key", "must be of the same mode (test or live) as the publishable key")),
            Some(_) => {}
        }
    }
    if let Some(webhook) = &req.webhook_secret {
        let ok = webhook
            .expose()
            .strip_prefix("whsec_")
            .is_some_and(|t| (8..=250).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !ok {
            errors.push(FieldError::new("/webhook_secret", "must be a Stripe webhook signing secret (whsec_…)"));
        }
    }
    let current = current_for_write::<StripeSettings>(app, scope, expected, "Stripe settings", &errors).await?;
    let stored_secrets = current.as_ref().and_then(|c| c.value.secrets.clone());
    if (req.secret_key.is_none() || req.webhook_secret.is_none()) && stored_secrets.is_none() {
        errors.push(FieldError::new(
            "/secret_key",
            "secret_key and webhook_secret are required the first time Stripe is configured",
        ));
    }
    // A key of another mode than the stored secret key would pair test and live credentials.
    if let (Some(current), Some(mode), None) = (&current, mode, &req.secret_key)
        && current.value.mode != mode
    {
        errors.push(FieldError::new("/publishable_key", "changes mode: send the secret key of the new mode too"));
    }
    ApiError::reject_if_any(errors)?;
    let Some(mode) = mode else {
        return Err(ApiError::internal("stripe mode validated but absent"));
    };
    let secrets = match (req.secret_key, req.webhook_secret, stored_secrets) {
        (None, None, stored) => stored,
        (Some(secret_key), Some(webhook_secret), _) => {
            Some(app.secrets.put(scope, &StripeCredentials { secret_key, webhook_secret }).await?)
        }
        // One of the two: keep the other from the version the configuration names (the
        // version, not the latest, so a concurrent loser's write is never merged in).
        (secret_key, webhook_secret, Some(stored)) => {
            let old = app.secrets.get::<StripeCredentials>(scope, &stored).await?;
            let merged = StripeCredentials {
                secret_key: secret_key.unwrap_or(old.secret_key),
                webhook_secret: webhook_secret.unwrap_or(old.webhook_secret),
            };
            Some(app.secrets.put(scope, &merged).await?)
        }
        (_, _, None) => {
            return Err(ApiError::internal("first Stripe configuration validated without both secrets"));
        }
    };
    let settings = StripeSettings { publishable_key: req.publishable_key, mode, secrets, updated_at: now_rfc3339() };
    let version = write_config(app, scope, &settings, expected, "Stripe settings").await?;
    Ok(Versioned { value: settings, version })
}

pub async fn get_storage(app: &App, scope: &TenantScope) -> Result<Versioned<StorageSettings>, ApiError> {
    read_config(app, scope, "storage settings").await
}

pub async fn put_storage(
    app: &App,
    scope: &TenantScope,
    expected: Option<u64>,
    req: StorageSettingsRequest,
) -> Result<Versioned<StorageSettings>, ApiError> {
    let mut errors = Vec::new();
    check_bucket(&req.bucket, "/bucket", &mut errors);
    let prefix = req.prefix.unwrap_or_else(|| format!("vendors/{}/", scope.vendor_id()));
    let prefix_ok = prefix.len() <= 200
        && !prefix.starts_with('/')
        && !prefix.contains("//")
        && !prefix.split('/').any(|p| p == ".." || p == ".")
        && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.!*'()".contains(&b));
    if !prefix_ok {
        errors.push(FieldError::new(
            "/prefix",
            "at most 200 safe characters (a-z, 0-9, / - _ . ! * ' ( )), no leading '/', no '..'",
        ));
    }
    ApiError::reject_if_any(errors)?;
    let settings = StorageSettings { bucket: req.bucket, prefix, updated_at: now_rfc3339() };
    let version = write_config(app, scope, &settings, expected, "storage settings").await?;
    Ok(Versioned { value: settings, version })
}
