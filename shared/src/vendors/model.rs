//! Vendors and their configuration: entities and rules, no I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VendorStatus {
    Active,
    Suspended,
}

/// A vendor's profile, stored at `V#<id>` / `PROFILE`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vendor {
    pub id: String,
    pub name: String,
    pub legal_name: Option<String>,
    pub contact_email: String,
    pub country: String,
    pub currency: String,
    pub timezone: String,
    pub status: VendorStatus,
    pub suspended_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The vendor's entry in the platform directory (`P#VENDORS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VendorSummary {
    pub id: String,
    pub name: String,
    pub status: VendorStatus,
    pub created_at: String,
}

impl Vendor {
    pub fn summary(&self) -> VendorSummary {
        VendorSummary {
            id: self.id.clone(),
            name: self.name.clone(),
            status: self.status,
            created_at: self.created_at.clone(),
        }
    }
}

// ---------------------------------------------------------------- shipping rules

/// Shipping rules: zones of countries, and methods priced per zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingRules {
    /// ISO 4217 currency of every amount below.
    pub currency: String,
    pub zones: Vec<ShippingZone>,
    pub methods: Vec<ShippingMethod>,
    /// The sales tax charged on an order's items and shipping, in basis points (1/100 of a
    /// percent: 1900 is 19 %); 0 when absent.
    #[serde(default)]
    pub tax_rate_basis_points: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingZone {
    /// Slug, unique among the vendor's zones.
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes; a country belongs to at most one zone.
    pub countries: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethod {
    /// Slug, unique among the vendor's methods.
    pub id: String,
    pub name: String,
    pub zone_id: String,
    pub rate: Rate,
    /// Orders worth at least this much (minor units) ship free with this method.
    #[serde(default)]
    pub free_over_minor: Option<i64>,
}

/// How a method is priced. Bands are ordered by their upper bound; the first band that
/// holds the parcel prices it, and a parcel past the last band cannot use the method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rate {
    Flat { amount_minor: i64 },
    Weight { bands: Vec<WeightBand> },
    OrderValue { bands: Vec<ValueBand> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightBand {
    pub up_to_grams: i64,
    pub amount_minor: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueBand {
    pub up_to_minor: i64,
    pub amount_minor: i64,
}

/// One priced option of a shipping quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuoteOption {
    pub method_id: String,
    pub name: String,
    pub amount_minor: i64,
    pub currency: String,
    pub free: bool,
}

/// Upper bound of any amount (minor units) or weight: keeps sums far from overflow.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
const MAX_ZONES: usize = 50;
const MAX_METHODS: usize = 100;
const MAX_BANDS: usize = 50;

impl ShippingRules {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !is_currency(&self.currency) {
            errors.push(FieldError::new("/currency", "must be an ISO 4217 code such as EUR"));
        }
        if self.tax_rate_basis_points > 10_000 {
            errors.push(FieldError::new("/tax_rate_basis_points", "is at most 10000 (100 %)"));
        }
        if self.zones.len() > MAX_ZONES {
            errors.push(FieldError::new("/zones", format!("at most {MAX_ZONES} zones")));
        }
        if self.methods.len() > MAX_METHODS {
            errors.push(FieldError::new("/methods", format!("at most {MAX_METHODS} methods")));
        }
        let mut zone_ids = std::collections::HashSet::new();
        let mut seen_countries = std::collections::HashMap::new();
        for (z, zone) in self.zones.iter().enumerate() {
            let at = format!("/zones/{z}");
            check_slug(&zone.id, &format!("{at}/id"), &mut errors);
            if !zone_ids.insert(zone.id.as_str()) {
                errors.push(FieldError::new(format!("{at}/id"), format!("zone id {} is used twice", zone.id)));
            }
            check_name(&zone.name, &format!("{at}/name"), &mut errors);
            if zone.countries.is_empty() {
                errors.push(FieldError::new(format!("{at}/countries"), "a zone needs at least one country"));
            }
            for (c, country) in zone.countries.iter().enumerate() {
                let at = format!("{at}/countries/{c}");
                if !is_country(country) {
                    errors.push(FieldError::new(at, format!("{country} is not an ISO 3166-1 alpha-2 country code")));
                } else if let Some(other) = seen_countries.insert(country.as_str(), zone.id.as_str()) {
                    errors.push(FieldError::new(at, format!("{country} is already in zone {other}")));
                }
            }
        }
        let mut method_ids = std::collections::HashSet::new();
        for (m, method) in self.methods.iter().enumerate() {
            let at = format!("/methods/{m}");
            check_slug(&method.id, &format!("{at}/id"), &mut errors);
            if !method_ids.insert(method.id.as_str()) {
                errors.push(FieldError::new(format!("{at}/id"), format!("method id {} is used twice", method.id)));
            }
            check_name(&method.name, &format!("{at}/name"), &mut errors);
            if !zone_ids.contains(method.zone_id.as_str()) {
                errors.push(FieldError::new(format!("{at}/zone_id"), format!("there is no zone {}", method.zone_id)));
            }
            if let Some(threshold) = method.free_over_minor {
                check_amount(threshold, &format!("{at}/free_over_minor"), &mut errors);
            }
            let at = format!("{at}/rate");
            match &method.rate {
                Rate::Flat { amount_minor } => check_amount(*amount_minor, &format!("{at}/amount_minor"), &mut errors),
                Rate::Weight { bands } => {
                    let bounds: Vec<(i64, i64)> = bands.iter().map(|b| (b.up_to_grams, b.amount_minor)).collect();
                    check_bands(&bounds, &at, "up_to_grams", &mut errors);
                }
                Rate::OrderValue { bands } => {
                    let bounds: Vec<(i64, i64)> = bands.iter().map(|b| (b.up_to_minor, b.amount_minor)).collect();
                    check_bands(&bounds, &at, "up_to_minor", &mut errors);
                }
            }
        }
        errors
    }

    /// The methods that can carry a parcel of `weight_grams` worth `order_value_minor` to
    /// `country`, cheapest first. Empty when no zone covers the country.
    pub fn quote(&self, country: &str, weight_grams: i64, order_value_minor: i64) -> Vec<QuoteOption> {
        let Some(zone) = self.zones.iter().find(|z| z.countries.iter().any(|c| c == country)) else {
            return Vec::new();
        };
        let mut options: Vec<QuoteOption> = self
            .methods
            .iter()
            .filter(|m| m.zone_id == zone.id)
            .filter_map(|m| {
                let free = m.free_over_minor.is_some_and(|threshold| order_value_minor >= threshold);
                let amount = match &m.rate {
                    Rate::Flat { amount_minor } => Some(*amount_minor),
                    Rate::Weight { bands } => {
                        bands.iter().find(|b| weight_grams <= b.up_to_grams).map(|b| b.amount_minor)
                    }
                    Rate::OrderValue { bands } => {
                        bands.iter().find(|b| order_value_minor <= b.up_to_minor).map(|b| b.amount_minor)
                    }
                };
                // A free method still needs a band that holds the parcel: weight limits are physical.
                amount.map(|amount| QuoteOption {
                    method_id: m.id.clone(),
                    name: m.name.clone(),
                    amount_minor: if free { 0 } else { amount },
                    currency: self.currency.clone(),
                    free,
                })
            })
            .collect();
        options.sort_by(|a, b| a.amount_minor.cmp(&b.amount_minor).then_with(|| a.method_id.cmp(&b.method_id)));
        options
    }
}

fn check_bands(bands: &[(i64, i64)], at: &str, bound_name: &str, errors: &mut Vec<FieldError>) {
    if bands.is_empty() || bands.len() > MAX_BANDS {
        errors.push(FieldError::new(format!("{at}/bands"), format!("1 to {MAX_BANDS} bands")));
    }
    let mut previous = 0;
    for (i, (bound, amount)) in bands.iter().enumerate() {
        let band_at = format!("{at}/bands/{i}");
        if *bound <= previous || *bound > MAX_AMOUNT {
            errors.push(FieldError::new(
                format!("{band_at}/{bound_name}"),
                format!("must be greater than {previous} (the band before) and at most {MAX_AMOUNT}"),
            ));
        }
        previous = (*bound).max(previous);
        check_amount(*amount, &format!("{band_at}/amount_minor"), errors);
    }
}

fn check_amount(amount: i64, at: &str, errors: &mut Vec<FieldError>) {
    if !(0..=MAX_AMOUNT).contains(&amount) {
        errors.push(FieldError::new(at, format!("must be from 0 to {MAX_AMOUNT} (minor units)")));
    }
}

pub(crate) fn check_slug(value: &str, at: &str, errors: &mut Vec<FieldError>) {
    let ok = (1..=40).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        errors.push(FieldError::new(at, "1-40 characters of a-z, 0-9, '-' and '_'"));
    }
}

pub(crate) fn check_name(value: &str, at: &str, errors: &mut Vec<FieldError>) {
    let len = value.trim().chars().count();
    if len == 0 || len > 200 || value.chars().any(char::is_control) {
        errors.push(FieldError::new(at, "1-200 printable characters"));
    }
}

pub(crate) fn check_email(value: &str, at: &str, errors: &mut Vec<FieldError>) {
    let ok = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        });
    if !ok {
        errors.push(FieldError::new(at, "must be an email address"));
    }
}

/// A host name or IP literal as an SMTP server is named.
pub(crate) fn check_host(value: &str, at: &str, errors: &mut Vec<FieldError>) {
    let ok = (1..=253).contains(&value.len())
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !ok {
        errors.push(FieldError::new(at, "must be a host name such as smtp.example.com"));
    }
}

/// A zone of the IANA database (bundled, so it does not depend on the OS image): payout
/// cycles close at midnight in it.
pub(crate) fn check_timezone(value: &str, at: &str, errors: &mut Vec<FieldError>) {
    if value.len() > 64 || jiff::tz::TimeZone::get(value).is_err() {
        errors.push(FieldError::new(at, "must be an IANA time zone such as Europe/Berlin"));
    }
}

/// S3 bucket naming rules (general purpose buckets).
pub(crate) fn check_bucket(value: &str, at: &str, errors: &mut Vec<FieldError>) {
    let bytes = value.as_bytes();
    let ok = (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !value.contains("..")
        && !value.split('.').all(|p| p.parse::<u8>().is_ok());
    if !ok {
        errors.push(FieldError::new(at, "must be a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')"));
    }
}

/// ISO 3166-1 alpha-2 (officially assigned codes).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS \
BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK \
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM \
JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS \
MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM \
US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// ISO 4217 codes of currencies in circulation that Stripe settles.
const CURRENCIES: &str = "AED AUD BGN BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF IDR ILS INR ISK JPY KRW MXN MYR NOK NZD \
PHP PLN RON SAR SEK SGD THB TRY TWD USD ZAR";

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split_ascii_whitespace().any(|c| c == code)
}

pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && CURRENCIES.split_ascii_whitespace().any(|c| c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ShippingRules {
        ShippingRules {
            currency: "EUR".into(),
            zones: vec![
                ShippingZone { id: "eu".into(), name: "EU".into(), countries: vec!["DE".into(), "FR".into()] },
                ShippingZone { id: "us".into(), name: "US".into(), countries: vec!["US".into()] },
            ],
            methods: vec![
                ShippingMethod {
                    id: "std".into(),
                    name: "Standard".into(),
                    zone_id: "eu".into(),
                    rate: Rate::Weight {
                        bands: vec![
                            WeightBand { up_to_grams: 1000, amount_minor: 500 },
                            WeightBand { up_to_grams: 5000, amount_minor: 900 },
                        ],
                    },
                    free_over_minor: Some(10_000),
                },
                ShippingMethod {
                    id: "express".into(),
                    name: "Express".into(),
                    zone_id: "eu".into(),
                    rate: Rate::OrderValue {
                        bands: vec![
                            ValueBand { up_to_minor: 5_000, amount_minor: 1_500 },
                            ValueBand { up_to_minor: MAX_AMOUNT, amount_minor: 2_500 },
                        ],
                    },
                    free_over_minor: None,
                },
                ShippingMethod {
                    id: "us-flat".into(),
                    name: "US flat".into(),
                    zone_id: "us".into(),
                    rate: Rate::Flat { amount_minor: 2_000 },
                    free_over_minor: None,
                },
            ],
            tax_rate_basis_points: 0,
        }
    }

    #[test]
    fn valid_rules_have_no_errors() {
        assert_eq!(rules().validate(), vec![]);
    }

    #[test]
    fn quote_picks_bands_thresholds_and_zone() {
        let r = rules();
        let light = r.quote("DE", 800, 2_000);
        assert_eq!(
            light.iter().map(|o| (o.method_id.as_str(), o.amount_minor)).collect::<Vec<_>>(),
            [("std", 500), ("express", 1_500)]
        );
        let heavy_but_free = r.quote("FR", 4_000, 12_000);
        assert_eq!(heavy_but_free[0].method_id, "std");
        assert_eq!(heavy_but_free[0].amount_minor, 0);
        assert!(heavy_but_free[0].free);
        assert_eq!(heavy_but_free[1].amount_minor, 2_500);
        // Past the last weight band, even free shipping cannot carry it.
        let too_heavy = r.quote("DE", 6_000, 20_000);
        assert_eq!(too_heavy.iter().map(|o| o.method_id.as_str()).collect::<Vec<_>>(), ["express"]);
        assert_eq!(r.quote("US", 10, 10)[0].amount_minor, 2_000);
        assert!(r.quote("JP", 10, 10).is_empty());
    }

    #[test]
    fn validation_names_each_bad_field() {
        let mut r = rules();
        r.currency = "EURO".into();
        r.zones[1].countries.push("DE".into());
        r.zones[1].countries.push("XX".into());
        r.methods[0].rate = Rate::Weight {
            bands: vec![
                WeightBand { up_to_grams: 1000, amount_minor: -1 },
                WeightBand { up_to_grams: 900, amount_minor: 5 },
            ],
        };
        r.methods[2].zone_id = "nowhere".into();
        r.methods[1].id = "std".into();
        let pointers: Vec<String> = r.validate().into_iter().map(|e| e.pointer).collect();
        assert_eq!(
            pointers,
            [
                "/currency",
                "/zones/1/countries/1",
                "/zones/1/countries/2",
                "/methods/0/rate/bands/0/amount_minor",
                "/methods/0/rate/bands/1/up_to_grams",
                "/methods/1/id",
                "/methods/2/zone_id",
            ]
        );
    }

    #[test]
    fn field_checks() {
        let mut e = Vec::new();
        check_bucket("my-bucket.docs", "/b", &mut e);
        check_email("ops@acme.example", "/e", &mut e);
        check_host("smtp.acme.example", "/h", &mut e);
        check_timezone("Europe/Berlin", "/t", &mut e);
        assert!(e.is_empty(), "{e:?}");
        check_bucket("My_Bucket", "/b", &mut e);
        check_bucket("192.168.1.1", "/b", &mut e);
        check_email("not-an-email", "/e", &mut e);
        check_host("smtp..x", "/h", &mut e);
        check_timezone("Berlin", "/t", &mut e);
        check_timezone("Mars/Olympus", "/t", &mut e);
        assert_eq!(e.len(), 6);
        assert!(is_country("DE") && !is_country("XX") && !is_country("de"));
        assert_eq!(COUNTRIES.split_ascii_whitespace().count(), 249);
    }
}

// ---------------------------------------------------------------- integration settings

use crate::integrations::secrets::{Redacted, SecretRef, VendorSecret};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// No encryption: only for a relay on a private network.
    None,
}

/// The vendor's outgoing mail server; the password lives in Secrets Manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub from_email: String,
    pub from_name: String,
    pub security: SmtpSecurity,
    /// The password's version in Secrets Manager; `None` until one is set.
    pub password: Option<SecretRef>,
    pub updated_at: String,
}

#[derive(Serialize, Deserialize)]
pub struct SmtpCredentials {
    pub password: Redacted,
}

impl VendorSecret for SmtpCredentials {
    const NAME: &'static str = "smtp";
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StripeMode {
    Test,
    Live,
}

/// The vendor's own Stripe account; the secret key and webhook secret live in Secrets Manager.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSettings {
    pub publishable_key: String,
    pub mode: StripeMode,
    /// The secret key and webhook secret's version in Secrets Manager.
    pub secrets: Option<SecretRef>,
    pub updated_at: String,
}

#[derive(Serialize, Deserialize)]
pub struct StripeCredentials {
    pub secret_key: Redacted,
    pub webhook_secret: Redacted,
}

impl VendorSecret for StripeCredentials {
    const NAME: &'static str = "stripe";
}

/// Where the vendor's documents (manifests, QR codes, statements) are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StorageSettings {
    pub bucket: String,
    pub prefix: String,
    pub updated_at: String,
}

/// `pk_test_…` / `pk_live_…`; secret keys are `sk_` or restricted `rk_` of the same mode.
pub fn stripe_key_mode(key: &str, kinds: &[&str]) -> Option<StripeMode> {
    kinds.iter().find_map(|kind| {
        let rest = key.strip_prefix(kind)?;
        let (mode, tail) = if let Some(t) = rest.strip_prefix("_test_") {
            (StripeMode::Test, t)
        } else {
            (StripeMode::Live, rest.strip_prefix("_live_")?)
        };
        let ok = (8..=250).contains(&tail.len()) && tail.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then_some(mode)
    })
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn stripe_keys_by_prefix() {
        assert_eq!(stripe_key_mode("pk_test_abcdefgh12", &["pk"]), Some(StripeMode::Test));
        assert_eq!(stripe_key_mode("rk_live_abcdefgh12", &["sk", "rk"]), Some(StripeMode::Live));
        assert_eq!(stripe_key_mode("sk_test_short", &["sk"]), None);
        assert_eq!(stripe_key_mode("pk_test_abcdefgh12", &["sk"]), None);
        assert_eq!(stripe_key_mode("pk_prod_abcdefgh12", &["pk"]), None);
    }
}
