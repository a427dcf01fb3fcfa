//! Gift use cases: the resolver (a code is the recipient's credential), the recipient's view,
//! choice and thank-you note; and the staff's fulfillment queue.

use std::collections::{BTreeMap, HashMap};

use super::dto::*;
use super::model::{FulfilAction, FulfillmentUnit, GiftState, RedemptionCode, UnitStatus, gift_link};
use crate::app::App;
use crate::audit::model::AuditEntry;
use crate::audit::repo::AuditLog;
use crate::catalog::model::{InventoryPolicy, Product, Variant, VariantStatus, variant_labels};
use crate::catalog::repo::CatalogRepo;
use crate::error::{ApiError, FieldError};
use crate::notifications::jobs::EmailDispatch;
use crate::notifications::model::EmailTemplate;
use crate::orders::dto::{UnitList, UnitResponse};
use crate::orders::repo::{OrderRepo, code_claim};
use crate::store::{Cursor, Versioned, decode, keys};
use crate::storefronts::model::Storefront;
use crate::storefronts::repo::StorefrontRepo;
use crate::tenancy::TenantScope;
use crate::vendors::model::ShippingRules;
use crate::vendors::repo::VendorRepo;
use crate::vendors::service::now_rfc3339;

/// At most this many units change in one bulk request: one transaction with its audit entry.
pub const MAX_BULK_UNITS: usize = 99;

fn gift_not_found() -> ApiError {
    // One answer for unknown, malformed and expired codes: a guess learns nothing.
    ApiError::NotFound("no gift has this code, or it has expired".into())
}

/// The gift resolver: from a typed code to the vendor's scope and the unit.
pub async fn resolve_gift(app: &App, typed: &str) -> Result<(TenantScope, Versioned<FulfillmentUnit>), ApiError> {
    let code = RedemptionCode::parse(typed).ok_or_else(gift_not_found)?;
    let claim = code_claim(&app.table, code.as_str()).await?.ok_or_else(gift_not_found)?;
    let scope = crate::tenancy::guard::gift_scope(&claim.owner_vendor).map_err(|_| gift_not_found())?;
    let unit = OrderRepo::new(&app.table, &scope)
        .unit(&claim.order_id, claim.unit_number)
        .await?
        .filter(|u| u.value.code == code.as_str())
        .filter(|u| !u.value.is_expired_at(time::OffsetDateTime::now_utc().unix_timestamp()))
        .ok_or_else(gift_not_found)?;
    Ok((scope, unit))
}

fn recipient_audit(scope: &TenantScope, unit: &FulfillmentUnit, action: &str, version: u64) -> AuditEntry {
    AuditEntry::by(&format!("recipient:{}", unit.id), scope.actor().role.as_str(), action, unit_resource(unit))
        .versions(Some(version), Some(version + 1))
}

fn unit_resource(unit: &FulfillmentUnit) -> String {
    format!("orders/{}/units/{}", unit.order_id, unit.number)
}

/// Saves a changed unit with its audit entry, if it is still the version read.
async fn save_unit(
    app: &App,
    scope: &TenantScope,
    unit: &FulfillmentUnit,
    read_version: u64,
    audit: &AuditEntry,
) -> Result<(), ApiError> {
    let writes = vec![
        OrderRepo::new(&app.table, scope).save_unit(unit, read_version)?,
        AuditLog::new(&app.table, scope).transact_put(audit)?,
    ];
    app.table.transact(writes).await.map_err(|err| match err {
        crate::store::StoreError::TransactionConditionFailed { .. } => {
            ApiError::Conflict("the gift changed meanwhile; load it again".into())
        }
        other => other.into(),
    })
}

/// The gift page. The first view marks the gift opened.
pub async fn open_gift(app: &App, typed: &str) -> Result<GiftView, ApiError> {
    let (scope, Versioned { value: unit, version }) = resolve_gift(app, typed).await?;
    if matches!(unit.gift, GiftState::Created | GiftState::Notified) {
        let mut opened = unit.clone();
        opened.gift = GiftState::Opened;
        opened.updated_at = now_rfc3339();
        let audit = recipient_audit(&scope, &unit, "unit.opened", version);
        // Two first views at once: one records the opening, the other shows the same gift.
        match save_unit(app, &scope, &opened, version, &audit).await {
            Ok(()) | Err(ApiError::Conflict(_)) => return gift_view(app, &scope, &opened, None, None).await,
            Err(other) => return Err(other),
        }
    }
    gift_view(app, &scope, &unit, None, None).await
}

async fn storefront_of(app: &App, scope: &TenantScope, id: &str) -> Result<Storefront, ApiError> {
    Ok(StorefrontRepo::new(&app.table, scope)
        .storefront(id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("storefront {id} of a unit is gone")))?
        .value)
}

async fn zone_countries(app: &App, scope: &TenantScope, method_id: &str) -> Result<Vec<String>, ApiError> {
    let rules = VendorRepo::new(&app.table, scope).config::<ShippingRules>().await?.map(|r| r.value);
    Ok(rules
        .and_then(|r| {
            let zone = r.methods.iter().find(|m| m.id == method_id)?.zone_id.clone();
            r.zones.into_iter().find(|z| z.id == zone).map(|z| z.countries)
        })
        .unwrap_or_default())
}

/// The products of a unit's lines with their variants: one Query per product, read once per
/// request for the choice's checks, its stock moves and the page shown after.
struct LineProducts(Vec<(Versioned<Product>, Vec<Versioned<Variant>>)>);

impl LineProducts {
    async fn read(app: &App, scope: &TenantScope, unit: &FulfillmentUnit) -> Result<Self, ApiError> {
        let catalog = CatalogRepo::new(&app.table, scope);
        let mut products: Vec<(Versioned<Product>, Vec<Versioned<Variant>>)> = Vec::new();
        for line in &unit.lines {
            if products.iter().any(|(p, _)| p.value.id == line.product_id) {
                continue;
            }
            let Some(found) = catalog.product_with_variants(&line.product_id).await? else {
                return Err(ApiError::internal(format!("product {} of a unit is gone", line.product_id)));
            };
            products.push(found);
        }
        Ok(Self(products))
    }

    fn product(&self, product_id: &str) -> Option<&(Versioned<Product>, Vec<Versioned<Variant>>)> {
        self.0.iter().find(|(p, _)| p.value.id == product_id)
    }

    fn variant(&self, product_id: &str, variant_id: &str) -> Option<&Variant> {
        self.product(product_id)?.1.iter().map(|v| &v.value).find(|v| v.id == variant_id)
    }

    /// The stock as this request's own moves left it (the page after an acceptance).
    fn apply(&mut self, moves: &[StockMove<'_>]) {
        for m in moves {
            let variants = self.0.iter_mut().filter(|(p, _)| p.value.id == m.product_id).flat_map(|(_, v)| v);
            if let Some(variant) = variants.map(|v| &mut v.value).find(|v| v.id == m.variant_id) {
                variant.stock_quantity += m.delta;
            }
        }
    }
}

/// `countries`: the unit's shipping zone, and `products` its products, when the caller has
/// read them already.
async fn gift_view(
    app: &App,
    scope: &TenantScope,
    unit: &FulfillmentUnit,
    countries: Option<Vec<String>>,
    products: Option<LineProducts>,
) -> Result<GiftView, ApiError> {
    let storefront = storefront_of(app, scope, &unit.storefront_id).await?;
    let products = match products {
        Some(products) => products,
        None => LineProducts::read(app, scope, unit).await?,
    };
    let listings = StorefrontRepo::new(&app.table, scope);
    let mut lines = Vec::with_capacity(unit.lines.len());
    for line in &unit.lines {
        let Some((product, variants)) = products.product(&line.product_id) else {
            return Err(ApiError::internal(format!("product {} of a unit is gone", line.product_id)));
        };
        let listing = listings.listing(&unit.storefront_id, &line.product_id).await?;
        let title = listing.map(|l| l.value.card.title).unwrap_or_else(|| product.value.title.clone());
        let choices = line
            .allowed_variant_ids
            .iter()
            .filter_map(|id| variants.iter().map(|v| &v.value).find(|v| &v.id == id))
            .filter(|v| v.status == VariantStatus::Active || v.id == line.variant_id)
            .map(|v| GiftChoice {
                variant_id: v.id.clone(),
                title: variant_labels(&product.value.options, v)
                    .iter()
                    .map(|(_, l)| *l)
                    .collect::<Vec<_>>()
                    .join(" / "),
                in_stock: v.inventory_policy == InventoryPolicy::Continue
                    || v.stock_quantity >= i64::from(line.quantity),
            })
            .collect();
        lines.push(GiftLine {
            product_id: line.product_id.clone(),
            title,
            description: product.value.description.clone(),
            quantity: line.quantity,
            variant_id: line.variant_id.clone(),
            choices,
        });
    }
    Ok(GiftView {
        code: RedemptionCode::parse(&unit.code).map(|c| c.display()).unwrap_or_default(),
        recipient_name: unit.recipient_name.clone(),
        sender_name: unit.sender_name.clone(),
        gift_message: unit.gift_message.clone(),
        storefront_name: storefront.name,
        branding: storefront.branding,
        gift: unit.gift,
        status: unit.status,
        expires_at: unit.expires_at.clone(),
        changeable: unit.is_changeable(),
        lines,
        address: unit.address.clone(),
        shipping_countries: match countries {
            Some(countries) => countries,
            None => zone_countries(app, scope, &unit.shipping_method_id).await?,
        },
        thank_you_note: unit.thank_you_note.clone(),
        carrier: unit.carrier.clone(),
        tracking_number: unit.tracking_number.clone(),
    })
}

/// The recipient chooses (or confirms) the variants and the address; repeatable until packed.
pub async fn accept_gift(app: &App, typed: &str, req: AcceptGiftRequest) -> Result<GiftView, ApiError> {
    let (scope, Versioned { value: unit, version }) = resolve_gift(app, typed).await?;
    if !unit.is_changeable() {
        return Err(ApiError::Conflict(format!("the gift is {} and can no longer be changed", unit.status.as_str())));
    }
    let mut errors = Vec::new();
    let mut accepted = unit.clone();
    let mut products = LineProducts::read(app, &scope, &unit).await?;
    if let Some(chosen) = &req.variant_ids {
        if chosen.len() != unit.lines.len() {
            errors.push(FieldError::new(
                "/variant_ids",
                format!("choose one variant for each of the {} items", unit.lines.len()),
            ));
        }
        for (i, (line, variant_id)) in accepted.lines.iter_mut().zip(chosen).enumerate() {
            let pointer = format!("/variant_ids/{i}");
            if !line.allowed_variant_ids.contains(variant_id) {
                errors.push(FieldError::new(pointer, "is not one of this gift's choices"));
                continue;
            }
            if *variant_id == line.variant_id {
                continue;
            }
            // A swap needs the variant to be sellable now, for the whole quantity.
            let sellable = products.variant(&line.product_id, variant_id).is_some_and(|v| {
                v.status == VariantStatus::Active
                    && (v.inventory_policy == InventoryPolicy::Continue || v.stock_quantity >= i64::from(line.quantity))
            });
            if sellable {
                line.variant_id = variant_id.clone();
            } else {
                errors.push(FieldError::new(pointer, "is out of stock"));
            }
        }
    }
    let mut zone = None;
    match req.address.as_ref().or(unit.address.as_ref()) {
        None => errors.push(FieldError::new("/address", "tell us where to send the gift")),
        Some(address) => {
            let before = errors.len();
            address.check("/address", &mut errors);
            let countries = zone.insert(zone_countries(app, &scope, &unit.shipping_method_id).await?);
            if errors.len() == before && !countries.contains(&address.country) {
                errors.push(FieldError::new(
                    "/address/country",
                    format!("this gift ships to {} only", countries.join(", ")),
                ));
            }
            accepted.address = Some(address.clone());
        }
    }
    ApiError::reject_if_any(errors)?;
    accepted.status = UnitStatus::Ready;
    accepted.gift = GiftState::Accepted;
    accepted.updated_at = now_rfc3339();
    let swapped = accepted.lines.iter().zip(&unit.lines).filter(|(a, b)| a.variant_id != b.variant_id).count();
    let audit = recipient_audit(&scope, &unit, "unit.accepted", version).summary(format!(
        "address in {}; {swapped} item(s) swapped",
        accepted.address.as_ref().map_or("", |a| &a.country)
    ));
    accept_with_stock(app, &scope, &unit, &accepted, version, &audit, &mut products).await?;
    // The shop fulfils units of mirrored Shopify items: its order is created by a job. If the
    // queue refuses, the error asks the recipient to confirm again, which queues it again.
    crate::shopify::service::order_settled_units(app, &scope, &[(&accepted, version + 1)])
        .await
        .map_err(ApiError::internal)?;
    gift_view(app, &scope, &accepted, zone, Some(products)).await
}

/// One stock movement of an acceptance.
struct StockMove<'a> {
    product_id: &'a str,
    variant_id: &'a str,
    /// Negative takes stock, positive gives it back.
    delta: i64,
    /// Where the line is in the request (for an out-of-stock error).
    line: usize,
    /// Taken from a Deny-policy variant: refused unless the stock is there.
    required: Option<i64>,
    /// Stock before, when read: a move to 0 or below changes the listings' stock state.
    before: Option<i64>,
}

/// One movement per variant: a transaction may name an item once (two lines of one variant,
/// or a swap from one line's variant to another's). The net taking keeps its condition.
fn merge_moves(moves: Vec<StockMove<'_>>) -> Vec<StockMove<'_>> {
    let mut merged: Vec<StockMove<'_>> = Vec::with_capacity(moves.len());
    for m in moves {
        match merged.iter_mut().find(|x| x.product_id == m.product_id && x.variant_id == m.variant_id) {
            Some(x) => {
                x.delta += m.delta;
                x.before = x.before.or(m.before);
                let deny = x.required.is_some() || m.required.is_some();
                x.required = (deny && x.delta < 0).then_some(-x.delta);
            }
            None => merged.push(m),
        }
    }
    merged.retain(|m| m.delta != 0);
    merged
}

/// Saves an acceptance with its stock: the first acceptance takes each item's stock, a swap
/// gives the old variant's back and takes the new one's; all in the unit's transaction, with
/// each taking conditioned on the stock being there (Deny policy) and each product checked
/// unlocked, so concurrent acceptances can never oversell and a failed save moves nothing.
/// `products` (as read before) get the moves made.
async fn accept_with_stock(
    app: &App,
    scope: &TenantScope,
    unit: &FulfillmentUnit,
    accepted: &FulfillmentUnit,
    version: u64,
    audit: &AuditEntry,
    products: &mut LineProducts,
) -> Result<(), ApiError> {
    let catalog = CatalogRepo::new(&app.table, scope);
    let first = unit.gift != GiftState::Accepted;
    let mut moves = Vec::new();
    for (i, (now_line, before_line)) in accepted.lines.iter().zip(&unit.lines).enumerate() {
        if !first && now_line.variant_id == before_line.variant_id {
            continue;
        }
        let quantity = i64::from(now_line.quantity);
        let variant = products.variant(&now_line.product_id, &now_line.variant_id);
        let deny = variant.as_ref().is_none_or(|v| v.inventory_policy == InventoryPolicy::Deny);
        moves.push(StockMove {
            product_id: &now_line.product_id,
            variant_id: &now_line.variant_id,
            delta: -quantity,
            line: i,
            required: deny.then_some(quantity),
            before: variant.map(|v| v.stock_quantity),
        });
        if !first {
            moves.push(StockMove {
                product_id: &before_line.product_id,
                variant_id: &before_line.variant_id,
                delta: i64::from(before_line.quantity),
                line: i,
                required: None,
                before: None,
            });
        }
    }
    let moves = merge_moves(moves);
    let mut writes = vec![
        OrderRepo::new(&app.table, scope).save_unit(accepted, version)?,
        AuditLog::new(&app.table, scope).transact_put(audit)?,
    ];
    for m in &moves {
        writes.push(catalog.move_stock(m.product_id, m.variant_id, m.delta, m.required)?);
    }
    let mut moved: Vec<&str> = moves.iter().map(|m| m.product_id).collect();
    moved.sort_unstable();
    moved.dedup();
    for product_id in &moved {
        writes.push(catalog.check_unlocked(product_id)?);
    }
    match app.table.transact(writes).await {
        Ok(()) => products.apply(&moves),
        Err(crate::store::StoreError::TransactionConditionFailed { failed }) => {
            let out_of_stock: Vec<FieldError> = failed
                .iter()
                .filter_map(|i| i.checked_sub(2).and_then(|m| moves.get(m)))
                .filter(|m| m.required.is_some())
                .map(|m| FieldError::new(format!("/variant_ids/{}", m.line), "is out of stock"))
                .collect();
            if !out_of_stock.is_empty() && !failed.contains(&0) {
                return Err(ApiError::validation(out_of_stock));
            }
            if failed.iter().any(|i| *i >= 2 + moves.len()) {
                return Err(ApiError::Conflict("the gift's product is being changed; try again in a minute".into()));
            }
            return Err(ApiError::Conflict("the gift changed meanwhile; load it again".into()));
        }
        Err(other) => return Err(other.into()),
    }
    // Listing cards show whether a product is in stock: a taking that may have emptied a
    // variant rebuilds them.
    for product_id in moved {
        let emptied = moves
            .iter()
            .any(|m| m.product_id == product_id && m.delta < 0 && m.before.is_none_or(|b| b + m.delta <= 0));
        if emptied && let Some((product, _)) = products.product(product_id) {
            crate::storefronts::service::refresh_listings(app, scope, &product.value).await;
        }
    }
    Ok(())
}

/// The recipient's thank-you note, which the buyer sees on the order's units.
pub async fn thank(app: &App, typed: &str, req: ThankYouRequest) -> Result<GiftView, ApiError> {
    let (scope, Versioned { value: unit, version }) = resolve_gift(app, typed).await?;
    let note = req.note.trim();
    let length = note.chars().count();
    if length == 0 || length > 1_000 || note.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::validation(vec![FieldError::new("/note", "1-1,000 characters of text")]));
    }
    let mut thanked = unit.clone();
    thanked.thank_you_note = Some(note.to_owned());
    thanked.updated_at = now_rfc3339();
    save_unit(app, &scope, &thanked, version, &recipient_audit(&scope, &unit, "unit.thanked", version)).await?;
    gift_view(app, &scope, &thanked, None, None).await
}

// ---------------------------------------------------------------- the fulfillment queue

pub fn parse_status(raw: Option<&str>) -> Result<UnitStatus, ApiError> {
    let raw = raw.unwrap_or("ready");
    serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| {
        ApiError::validation(vec![FieldError::new(
            "status",
            "is one of awaiting_address, ready, packed, shipped, delivered, cancelled",
        )])
    })
}

pub async fn list_queue(
    app: &App,
    scope: &TenantScope,
    status: UnitStatus,
    order_id: Option<&str>,
    limit: i32,
    cursor: Option<Cursor>,
) -> Result<UnitList, ApiError> {
    let (units, next) =
        OrderRepo::new(&app.table, scope).queue(status.as_str(), order_id, limit, cursor.as_ref()).await?;
    Ok(UnitList { items: units.into_iter().map(|u| u.value.into()).collect(), next_cursor: next.map(|c| c.encode()) })
}

fn check_label(value: Option<&str>, pointer: String, errors: &mut Vec<FieldError>) {
    match value.map(str::trim) {
        Some(v) if (1..=100).contains(&v.chars().count()) && !v.chars().any(char::is_control) => {}
        _ => errors.push(FieldError::new(pointer, "1-100 characters, required to ship")),
    }
}

/// Packs, ships or delivers up to 99 units at once: every unit is checked first and one
/// transaction writes them all (or, on any problem, none). Shipping emails each recipient.
pub async fn fulfil(app: &App, scope: &TenantScope, req: FulfilRequest) -> Result<FulfilResponse, ApiError> {
    let mut errors = Vec::new();
    if req.units.is_empty() || req.units.len() > MAX_BULK_UNITS {
        errors.push(FieldError::new("/units", format!("1 to {MAX_BULK_UNITS} units per request")));
    }
    let mut keys_wanted = Vec::new();
    for (i, u) in req.units.iter().enumerate() {
        match FulfillmentUnit::parse_id(&u.unit_id) {
            Some((order, number)) => keys_wanted.push(keys::unit_key(scope, order, number)),
            None => errors.push(FieldError::new(format!("/units/{i}/unit_id"), "no such unit")),
        }
        if req.units[..i].iter().any(|other| other.unit_id == u.unit_id) {
            errors.push(FieldError::new(format!("/units/{i}/unit_id"), "is listed twice"));
        }
        if req.action == FulfilAction::Ship {
            check_label(u.carrier.as_deref(), format!("/units/{i}/carrier"), &mut errors);
            check_label(u.tracking_number.as_deref(), format!("/units/{i}/tracking_number"), &mut errors);
        }
    }
    ApiError::reject_if_any(errors)?;
    // Units also change under background jobs (gift delivery marks them notified): a conflict
    // reads them again and re-checks every transition.
    let mut attempts = 0;
    let changed = loop {
        attempts += 1;
        let found: HashMap<String, Versioned<FulfillmentUnit>> = app
            .table
            .batch_get(&keys_wanted)
            .await?
            .into_iter()
            .map(|item| decode::<FulfillmentUnit>(item).map(|u| (u.value.id.clone(), u)))
            .collect::<Result<_, _>>()?;
        let now = now_rfc3339();
        let repo = OrderRepo::new(&app.table, scope);
        let mut changed = Vec::with_capacity(req.units.len());
        let mut writes = Vec::with_capacity(req.units.len() + 1);
        let mut errors = Vec::new();
        for (i, u) in req.units.iter().enumerate() {
            let Some(current) = found.get(&u.unit_id) else {
                errors.push(FieldError::new(format!("/units/{i}/unit_id"), "no such unit"));
                continue;
            };
            match current.value.fulfil(req.action) {
                Ok((status, gift)) => {
                    let mut next = current.value.clone();
                    next.status = status;
                    next.gift = gift;
                    next.updated_at = now.clone();
                    if req.action == FulfilAction::Ship {
                        next.carrier = u.carrier.as_deref().map(|c| c.trim().to_owned());
                        next.tracking_number = u.tracking_number.as_deref().map(|t| t.trim().to_owned());
                    }
                    writes.push(repo.save_unit(&next, current.version)?);
                    changed.push(next);
                }
                Err(why) => errors.push(FieldError::new(format!("/units/{i}/unit_id"), why)),
            }
        }
        ApiError::reject_if_any(errors)?;
        let verb = match req.action {
            FulfilAction::Pack => "packed",
            FulfilAction::Ship => "shipped",
            FulfilAction::Deliver => "delivered",
        };
        let ids: Vec<&str> = changed.iter().map(|u| u.id.as_str()).collect();
        let audit = AuditEntry::new(scope, &format!("units.{verb}"), "units".to_owned()).summary(format!(
            "{} unit(s) {verb}: {}",
            changed.len(),
            ids.join(", ")
        ));
        writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
        match app.table.transact(writes).await {
            Ok(()) => break changed,
            Err(crate::store::StoreError::TransactionConditionFailed { .. }) if attempts < 4 => continue,
            Err(crate::store::StoreError::TransactionConditionFailed { .. }) => {
                return Err(ApiError::Conflict("these units keep changing; load the queue again".into()));
            }
            Err(other) => return Err(other.into()),
        }
    };
    // The units are shipped whatever happens next: a failure to queue the emails is logged
    // for operators rather than turned into an error the caller cannot retry.
    if req.action == FulfilAction::Ship
        && let Err(err) = email_shipments(app, scope, &changed).await
    {
        tracing::error!(error = %err, units = changed.len(), "shipment emails not queued");
    }
    Ok(FulfilResponse { units: changed.into_iter().map(UnitResponse::from).collect() })
}

/// One shipment email per unit (the email job sends each once, however often it is queued).
async fn email_shipments(app: &App, scope: &TenantScope, units: &[FulfillmentUnit]) -> Result<(), ApiError> {
    let vendor_name = VendorRepo::new(&app.table, scope).profile().await?.map(|v| v.value.name).unwrap_or_default();
    let mut links = GiftLinks::new(app, scope);
    let mut emails = Vec::with_capacity(units.len());
    for unit in units {
        let (link, _) = links.link(unit).await?;
        emails.push(EmailDispatch {
            message_key: format!("shipped-{}", unit.id),
            to_email: unit.recipient_email.clone(),
            to_name: Some(unit.recipient_name.clone()),
            template: EmailTemplate::ShipmentNotification,
            vars: BTreeMap::from([
                ("recipient_name".to_owned(), unit.recipient_name.clone()),
                ("sender_name".to_owned(), unit.sender_name.clone()),
                ("vendor_name".to_owned(), vendor_name.clone()),
                ("carrier".to_owned(), unit.carrier.clone().unwrap_or_default()),
                ("tracking_number".to_owned(), unit.tracking_number.clone().unwrap_or_default()),
                ("gift_link".to_owned(), link),
            ]),
            inline_images: Vec::new(),
        });
    }
    app.jobs.enqueue_batch(scope, &emails).await.map_err(ApiError::internal)?;
    Ok(())
}

// ---------------------------------------------------------------- packing manifests

/// Units a manifest may list.
pub const MAX_MANIFEST_UNITS: usize = 1_000;
/// How long a manifest's download link works.
const DOWNLOAD_SECONDS: u64 = 900;

/// Validates the selection and starts the manifest job (202 with the job resource).
pub async fn start_manifest(
    app: &App,
    scope: &TenantScope,
    req: ManifestRequest,
) -> Result<crate::jobs::records::JobRecord, ApiError> {
    let mut errors = Vec::new();
    match &req.unit_ids {
        Some(ids) => {
            if ids.is_empty() || ids.len() > MAX_MANIFEST_UNITS || req.status.is_some() || req.order_id.is_some() {
                errors.push(FieldError::new("/unit_ids", "1 to 1,000 unit ids, or a status and order instead"));
            }
            for (i, id) in ids.iter().enumerate() {
                if FulfillmentUnit::parse_id(id).is_none() {
                    errors.push(FieldError::new(format!("/unit_ids/{i}"), "no such unit"));
                }
            }
        }
        None if req.order_id.as_ref().is_some_and(|o| o.is_empty() || o.len() > 64) => {
            errors.push(FieldError::new("/order_id", "is an order id"));
        }
        None => {}
    }
    ApiError::reject_if_any(errors)?;
    if app.config.documents_bucket.is_none() {
        return Err(ApiError::internal("BESTOW_DOCUMENTS_BUCKET is not set"));
    }
    let job_id = crate::store::ids::new_id();
    let job = super::jobs::PackingManifest { job_id: job_id.clone() };
    crate::jobs::records::start_job(app, scope, job_id, &req, &job).await
}

/// The manifest job's work: gather the units, render the PDF, store it under the vendor's
/// prefix in the documents bucket, and record where on the job resource.
pub async fn run_manifest(
    app: &App,
    scope: &TenantScope,
    job: &super::jobs::PackingManifest,
) -> Result<serde_json::Value, crate::jobs::JobError> {
    use crate::jobs::JobError;
    use crate::jobs::records::{JobRecords, JobStatus};
    let records = JobRecords::new(&app.table, scope);
    let req: ManifestRequest = records
        .input(&job.job_id)
        .await?
        .ok_or_else(|| JobError::Permanent("the manifest's selection is missing".into()))?;
    let bucket = app
        .config
        .documents_bucket
        .clone()
        .ok_or_else(|| JobError::Permanent("BESTOW_DOCUMENTS_BUCKET is not set".into()))?;
    let repo = OrderRepo::new(&app.table, scope);
    let mut units: Vec<FulfillmentUnit> = match &req.unit_ids {
        Some(ids) => {
            let keys: Vec<_> = ids
                .iter()
                .filter_map(|id| FulfillmentUnit::parse_id(id))
                .map(|(order, number)| keys::unit_key(scope, order, number))
                .collect();
            let items = app.table.batch_get(&keys).await?;
            items.into_iter().map(|i| decode::<FulfillmentUnit>(i).map(|u| u.value)).collect::<Result<_, _>>()?
        }
        None => {
            let status = req.status.unwrap_or(UnitStatus::Ready);
            let mut units = Vec::new();
            let mut cursor = None;
            loop {
                let (page, next) = repo.queue(status.as_str(), req.order_id.as_deref(), 100, cursor.as_ref()).await?;
                units.extend(page.into_iter().map(|u| u.value));
                match next {
                    Some(next) if units.len() < MAX_MANIFEST_UNITS => cursor = Some(next),
                    _ => break,
                }
            }
            units.truncate(MAX_MANIFEST_UNITS);
            units
        }
    };
    units.sort_by(|a, b| (&a.order_id, a.number).cmp(&(&b.order_id, b.number)));
    records.progress(&job.job_id, JobStatus::Running, units.len() as u64, 0, 0).await?;

    // Titles as the catalogue names them: one Query per distinct product.
    let catalog = CatalogRepo::new(&app.table, scope);
    let mut titles: HashMap<(String, String), (String, Option<String>)> = HashMap::new();
    let products: std::collections::BTreeSet<String> =
        units.iter().flat_map(|u| u.lines.iter().map(|l| l.product_id.clone())).collect();
    for product_id in products {
        if let Some((product, variants)) = catalog.product_with_variants(&product_id).await? {
            for v in variants {
                let labels = variant_labels(&product.value.options, &v.value);
                let options = labels.iter().map(|(_, l)| *l).collect::<Vec<_>>().join(" / ");
                let title = if options.is_empty() {
                    product.value.title.clone()
                } else {
                    format!("{} — {options}", product.value.title)
                };
                titles.insert((product_id.clone(), v.value.id.clone()), (title, v.value.sku.clone()));
            }
        }
    }
    let entries: Vec<super::model::ManifestEntry> = units
        .iter()
        .map(|u| super::model::ManifestEntry {
            unit_id: u.id.clone(),
            status: u.status,
            recipient_name: u.recipient_name.clone(),
            address: u.address.clone(),
            shipping_method_id: u.shipping_method_id.clone(),
            items: u
                .lines
                .iter()
                .map(|l| {
                    let (title, sku) = titles
                        .get(&(l.product_id.clone(), l.variant_id.clone()))
                        .cloned()
                        .unwrap_or_else(|| (format!("product {} variant {}", l.product_id, l.variant_id), None));
                    (l.quantity, title, sku)
                })
                .collect(),
            gift_message: u.gift_message.clone(),
        })
        .collect();
    let vendor_name = VendorRepo::new(&app.table, scope).profile().await?.map(|v| v.value.name).unwrap_or_default();
    let generated = now_rfc3339();
    let (pdf, pages) = super::model::render_manifest(&vendor_name, generated.get(..16).unwrap_or(&generated), &entries);
    let key = format!("{}manifests/{}.pdf", keys::vendor_object_prefix(scope), job.job_id);
    let bytes = pdf.len();
    app.s3()
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .content_type("application/pdf")
        .content_disposition(format!("attachment; filename=\"manifest-{}.pdf\"", job.job_id))
        .body(pdf.into())
        .send()
        .await
        .map_err(|e| {
            JobError::Retryable(format!("storing the manifest: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
        })?;
    let result = serde_json::json!({ "key": key, "pages": pages, "units": entries.len(), "bytes": bytes });
    let mut record =
        records.get(&job.job_id).await?.ok_or_else(|| JobError::Permanent("the job resource is gone".into()))?.value;
    record.status = JobStatus::Succeeded;
    record.total = entries.len() as u64;
    record.processed = entries.len() as u64;
    record.result = Some(result.clone());
    records.finish(&record).await?;
    Ok(result)
}

/// A manifest's state and, once it exists, a presigned download link.
pub async fn get_manifest(app: &App, scope: &TenantScope, id: &str) -> Result<ManifestResponse, ApiError> {
    use crate::jobs::records::{JobRecords, JobStatus};
    let record = JobRecords::new(&app.table, scope)
        .get(id)
        .await?
        .filter(|r| r.value.job_type == <super::jobs::PackingManifest as crate::jobs::Job>::TYPE)
        .ok_or_else(|| ApiError::NotFound(format!("manifest {id} not found")))?
        .value;
    let key = record.result.as_ref().and_then(|r| r["key"].as_str()).map(str::to_owned);
    let download_url = match (record.status, key, &app.config.documents_bucket) {
        (JobStatus::Succeeded, Some(key), Some(bucket)) => {
            let expires = std::time::Duration::from_secs(DOWNLOAD_SECONDS);
            let presigning =
                aws_sdk_s3::presigning::PresigningConfig::expires_in(expires).map_err(ApiError::internal)?;
            let presigned = app
                .s3()
                .get_object()
                .bucket(bucket)
                .key(key)
                .presigned(presigning)
                .await
                .map_err(ApiError::internal)?;
            Some(presigned.uri().to_owned())
        }
        _ => None,
    };
    Ok(ManifestResponse {
        id: record.id,
        status: record.status,
        units: record.total,
        pages: record.result.as_ref().and_then(|r| r["pages"].as_u64()),
        expires_in_seconds: download_url.as_ref().map(|_| DOWNLOAD_SECONDS),
        download_url,
        failure: record.failure,
    })
}

// ---------------------------------------------------------------- reminders and expiry

/// Gift links of units, reading each storefront once.
struct GiftLinks<'a> {
    app: &'a App,
    scope: &'a TenantScope,
    storefronts: BTreeMap<String, Storefront>,
}

impl<'a> GiftLinks<'a> {
    fn new(app: &'a App, scope: &'a TenantScope) -> Self {
        Self { app, scope, storefronts: BTreeMap::new() }
    }

    async fn link(&mut self, unit: &FulfillmentUnit) -> Result<(String, RedemptionCode), ApiError> {
        if !self.storefronts.contains_key(&unit.storefront_id) {
            let storefront = storefront_of(self.app, self.scope, &unit.storefront_id).await?;
            self.storefronts.insert(unit.storefront_id.clone(), storefront);
        }
        let storefront = &self.storefronts[&unit.storefront_id];
        let code =
            RedemptionCode::parse(&unit.code).ok_or_else(|| ApiError::internal("a unit has a malformed code"))?;
        let link = gift_link(&self.app.config.gift_link_base, storefront.host.as_deref(), &storefront.slug, &code);
        Ok((link, code))
    }
}

/// What a sweep of one vendor did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SweepOutcome {
    pub reminded: u32,
    pub expired: u32,
    /// Units changed by someone else during the sweep: the next sweep looks again.
    pub skipped: u32,
}

/// Reminds recipients who have not redeemed after the order's reminder delay (once each) and
/// expires the gifts whose link ran out before the recipient gave an address. Runs from the
/// schedule for each vendor; safe to repeat (a reminded unit is marked, an expired one is no
/// longer awaiting).
pub async fn sweep_vendor(app: &App, scope: &TenantScope, now_epoch_s: i64) -> Result<SweepOutcome, ApiError> {
    use super::model::SweepAction;
    let repo = OrderRepo::new(&app.table, scope);
    let mut due = Vec::new();
    for status in [UnitStatus::AwaitingAddress, UnitStatus::Ready] {
        let mut cursor = None;
        loop {
            let (page, next) = repo.queue(status.as_str(), None, 100, cursor.as_ref()).await?;
            due.extend(page.into_iter().filter_map(|u| u.value.sweep_action(now_epoch_s).map(|a| (a, u))));
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let vendor_name = VendorRepo::new(&app.table, scope).profile().await?.map(|v| v.value.name).unwrap_or_default();
    let mut links = GiftLinks::new(app, scope);
    let now = now_rfc3339();
    let mut outcome = SweepOutcome::default();
    for batch in due.chunks(MAX_BULK_UNITS) {
        // Emails first: if the unit writes fail, the retry sends nothing twice (the email job
        // sends each message key once); the other way round a crash would lose reminders.
        let mut emails = Vec::new();
        let mut writes = Vec::with_capacity(batch.len() + 1);
        for (action, unit) in batch {
            let mut next = unit.value.clone();
            next.updated_at = now.clone();
            match action {
                SweepAction::Expire => {
                    next.status = UnitStatus::Cancelled;
                    next.gift = GiftState::Expired;
                    outcome.expired += 1;
                }
                SweepAction::Remind => {
                    next.reminded_at = Some(now.clone());
                    let (link, code) = links.link(&unit.value).await?;
                    emails.push(EmailDispatch {
                        message_key: format!("reminder-{}", unit.value.id),
                        to_email: unit.value.recipient_email.clone(),
                        to_name: Some(unit.value.recipient_name.clone()),
                        template: EmailTemplate::GiftReminder,
                        vars: BTreeMap::from([
                            ("recipient_name".to_owned(), unit.value.recipient_name.clone()),
                            ("sender_name".to_owned(), unit.value.sender_name.clone()),
                            ("vendor_name".to_owned(), vendor_name.clone()),
                            ("gift_link".to_owned(), link),
                            ("gift_code".to_owned(), code.display()),
                            ("expires_on".to_owned(), unit.value.expires_at.get(..10).unwrap_or_default().to_owned()),
                        ]),
                        inline_images: Vec::new(),
                    });
                    outcome.reminded += 1;
                }
            }
            writes.push(repo.save_unit(&next, unit.version)?);
        }
        app.jobs.enqueue_batch(scope, &emails).await.map_err(ApiError::internal)?;
        let summary = format!("{} reminded, {} expired", outcome.reminded, outcome.expired);
        let audit = AuditEntry::by("schedule:gift_sweep", "system", "units.swept", "units".to_owned()).summary(summary);
        writes.push(AuditLog::new(&app.table, scope).transact_put(&audit)?);
        match app.table.transact(writes).await {
            Ok(()) => {}
            Err(crate::store::StoreError::TransactionConditionFailed { .. }) => {
                // Someone redeemed or packed meanwhile: leave this batch to the next sweep.
                outcome.skipped += batch.len() as u32;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(outcome)
}
