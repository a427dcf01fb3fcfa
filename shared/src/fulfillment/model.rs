//! Redemption codes: the credential of a gift link, so unguessable, and typed by people from
//! a printed card, so forgiving. No I/O here; uniqueness is the store's (a conditional write
//! on the code's global item).

use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Crockford's base32: no I, L, O or U, so nothing reads as another character.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 characters × 5 bits = 80 bits of randomness.
pub const CODE_CHARS: usize = 16;
pub const CODE_BITS: usize = CODE_CHARS * 5;

/// A normalised code: 16 characters of the alphabet, no separators.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RedemptionCode(String);

impl RedemptionCode {
    /// A fresh code: 80 bits from the thread's cryptographically secure generator (ChaCha12,
    /// seeded and reseeded from the operating system).
    pub fn generate() -> Self {
        let mut bytes = [0u8; CODE_BITS / 8];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bits(&bytes)
    }

    fn from_bits(bytes: &[u8; CODE_BITS / 8]) -> Self {
        let value = bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
        let code = (0..CODE_CHARS).rev().map(|i| ALPHABET[((value >> (5 * i)) & 0x1f) as usize] as char).collect();
        Self(code)
    }

    /// Reads what a person typed: case-insensitive, hyphens and spaces ignored, and the
    /// look-alikes Crockford maps (O → 0, I and L → 1). `None` if it cannot be a code, so an
    /// unknown and a malformed code can be answered the same way.
    pub fn parse(typed: &str) -> Option<Self> {
        let mut code = String::with_capacity(CODE_CHARS);
        for c in typed.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
                _ => return None,
            };
            code.push(c);
        }
        (code.len() == CODE_CHARS).then_some(Self(code))
    }

    /// The normalised form, as stored and as a key part.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How it is printed and shown: `ABCD-EFGH-JKMN-PQRS`.
    pub fn display(&self) -> String {
        self.0.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
    }
}

/// Where a unit stands in the vendor's fulfillment queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// The recipient has not confirmed an address (and, where allowed, a variant) yet.
    AwaitingAddress,
    /// Address and items are settled: the vendor can pack it.
    Ready,
    Packed,
    Shipped,
    Delivered,
    Cancelled,
}

impl UnitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingAddress => "awaiting_address",
            Self::Ready => "ready",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The recipient's side of the gift, as gifting platforms have taught buyers to expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GiftState {
    Created,
    Notified,
    Opened,
    Accepted,
    Packed,
    Shipped,
    Delivered,
    Expired,
    Cancelled,
}

/// What one recipient receives: a line of the order's bundle, possibly swapped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnitLine {
    pub product_id: String,
    pub variant_id: String,
    pub quantity: u32,
    /// What the buyer paid per item: a swap may choose a variant up to this price.
    pub paid_unit_minor: i64,
    /// The variant the buyer chose and those the recipient may swap to (visible on the
    /// storefront at checkout, no dearer than the one paid for).
    pub allowed_variant_ids: Vec<String>,
}

/// One recipient's share of an order: created by the split, worked by the vendor's staff,
/// redeemed by the recipient with its code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentUnit {
    /// `<order id>-<number>`, number 1-based in the buyer's recipient order (5 digits).
    pub id: String,
    pub order_id: String,
    pub number: u32,
    pub storefront_id: String,
    /// The normalised redemption code (the gift link's credential).
    pub code: String,
    pub recipient_name: String,
    pub recipient_email: String,
    pub gift_message: Option<String>,
    pub sender_name: String,
    pub address: Option<crate::orders::model::Address>,
    pub shipping_method_id: String,
    pub lines: Vec<UnitLine>,
    /// What the buyer paid for this unit (bundle, shipping, tax share): what refunding it returns.
    pub amount_minor: i64,
    /// A refund of this unit asked of Stripe and not yet settled.
    pub refund_id: Option<String>,
    pub status: UnitStatus,
    pub gift: GiftState,
    pub currency: String,
    /// RFC 3339; the link stops working after it.
    pub expires_at: String,
    pub remind_after_days: u32,
    pub thank_you_note: Option<String>,
    /// When the reminder went out (once per unit).
    #[serde(default)]
    pub reminded_at: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// The order created for this unit in the vendor's Shopify shop (synced variants): from
    /// then on the shop fulfils it, and the gift can no longer be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_order: Option<ExternalOrder>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExternalOrder {
    /// `shopify`.
    pub source: String,
    /// `gid://shopify/Order/…`.
    pub id: String,
    /// The shop's order name, e.g. `#1001`.
    pub name: String,
    /// Set when the shop cancelled it: the vendor must settle the unit (refund or re-send).
    #[serde(default)]
    pub cancelled_at: Option<String>,
}

impl ExternalOrder {
    /// Being created: no id yet (the unit is frozen meanwhile).
    pub fn pending(source: &str) -> Self {
        Self { source: source.to_owned(), id: String::new(), name: String::new(), cancelled_at: None }
    }
}

impl FulfillmentUnit {
    pub fn unit_id(order_id: &str, number: u32) -> String {
        format!("{order_id}-{number:05}")
    }

    /// `(order id, number)` of a unit id; `None` when it cannot be one.
    pub fn parse_id(unit_id: &str) -> Option<(&str, u32)> {
        let (order, number) = unit_id.rsplit_once('-')?;
        let number = number.parse().ok().filter(|n| *n >= 1 && number.len() == 5)?;
        (!order.is_empty()).then_some((order, number))
    }
}

/// What the scheduled sweep does to a unit at `now_epoch_s`.
#[derive(Debug, PartialEq, Eq)]
pub enum SweepAction {
    /// The recipient has not redeemed `remind_after_days` after the gift went out.
    Remind,
    /// The link expired before the recipient gave an address: the unit will not ship.
    Expire,
}

impl FulfillmentUnit {
    pub fn sweep_action(&self, now_epoch_s: i64) -> Option<SweepAction> {
        let at = |rfc3339: &str| {
            time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
        };
        let expires = at(&self.expires_at).ok()?;
        let unredeemed = matches!(self.gift, GiftState::Created | GiftState::Notified | GiftState::Opened);
        if self.status == UnitStatus::AwaitingAddress && unredeemed && expires <= now_epoch_s {
            return Some(SweepAction::Expire);
        }
        let remind_at = at(&self.created_at).ok()? + i64::from(self.remind_after_days) * 86_400;
        let notified = matches!(self.gift, GiftState::Notified | GiftState::Opened);
        let wanted = self.remind_after_days > 0 && self.reminded_at.is_none();
        (notified && wanted && remind_at <= now_epoch_s && now_epoch_s < expires).then_some(SweepAction::Remind)
    }
}

/// What staff do to units in the fulfillment queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FulfilAction {
    Pack,
    Ship,
    Deliver,
}

impl FulfillmentUnit {
    /// The recipient may still choose the variant and the address.
    pub fn is_changeable(&self) -> bool {
        self.external_order.is_none()
            && matches!(self.status, UnitStatus::AwaitingAddress | UnitStatus::Ready)
            && !matches!(self.gift, GiftState::Expired | GiftState::Cancelled)
    }

    /// The link stops working at expiry unless the recipient already accepted the gift (then
    /// it shows the shipment).
    pub fn is_expired_at(&self, now_epoch_s: i64) -> bool {
        let accepted = !matches!(self.gift, GiftState::Created | GiftState::Notified | GiftState::Opened);
        let expires = time::OffsetDateTime::parse(&self.expires_at, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp())
            .unwrap_or(0);
        self.gift == GiftState::Expired || (!accepted && expires <= now_epoch_s)
    }

    /// The unit's next status and gift state under `action`, or why it cannot be done.
    pub fn fulfil(&self, action: FulfilAction) -> Result<(UnitStatus, GiftState), String> {
        if self.refund_id.is_some() {
            return Err("a refund of this unit is in progress".to_owned());
        }
        match (action, self.status) {
            (FulfilAction::Pack, UnitStatus::Ready) => Ok((UnitStatus::Packed, GiftState::Packed)),
            (FulfilAction::Ship, UnitStatus::Ready | UnitStatus::Packed) => {
                Ok((UnitStatus::Shipped, GiftState::Shipped))
            }
            (FulfilAction::Deliver, UnitStatus::Shipped) => Ok((UnitStatus::Delivered, GiftState::Delivered)),
            (action, status) => Err(format!("a unit that is {} cannot be marked {action:?}", status.as_str())),
        }
    }
}

/// One unit as a packing manifest lists it, its items resolved to titles.
pub struct ManifestEntry {
    pub unit_id: String,
    pub status: UnitStatus,
    pub recipient_name: String,
    pub address: Option<crate::orders::model::Address>,
    pub shipping_method_id: String,
    /// (quantity, title with the variant's option values, SKU).
    pub items: Vec<(u32, String, Option<String>)>,
    pub gift_message: Option<String>,
}

/// The packing manifest's PDF: one block per unit (recipient, address, items, gift message),
/// never split across pages. Returns the bytes and the page count.
pub fn render_manifest(vendor_name: &str, generated_at: &str, entries: &[ManifestEntry]) -> (Vec<u8>, usize) {
    use crate::pdf::TextPdf;
    let mut pdf = TextPdf::new(&format!("Packing manifest — {vendor_name} — {generated_at} — {} units", entries.len()));
    for entry in entries {
        let address: Vec<String> = match &entry.address {
            Some(a) => [
                Some(a.line1.clone()),
                a.line2.clone(),
                Some(format!("{} {}", a.postal_code, a.city)),
                a.region.clone(),
                Some(a.country.clone()),
            ]
            .into_iter()
            .flatten()
            .collect(),
            None => vec!["(the recipient has not given an address yet)".to_owned()],
        };
        let lines = 2 + address.len() + entry.items.len() + usize::from(entry.gift_message.is_some());
        pdf.keep_together(TextPdf::height_of(lines, 10.0) + 16.0);
        pdf.text(0.0, 10.0, true, &format!("{} {} [{}]", entry.unit_id, entry.recipient_name, entry.status.as_str()));
        for line in &address {
            pdf.text(14.0, 9.0, false, line);
        }
        pdf.text(14.0, 9.0, false, &format!("Shipping: {}", entry.shipping_method_id));
        for (quantity, title, sku) in &entry.items {
            let sku = sku.as_deref().map(|s| format!("   SKU {s}")).unwrap_or_default();
            pdf.text(14.0, 10.0, true, &format!("{quantity} × {title}{sku}"));
        }
        if let Some(message) = &entry.gift_message {
            pdf.text(14.0, 9.0, false, &format!("Gift message: “{message}”"));
        }
        pdf.rule();
        pdf.gap(4.0);
    }
    let pages = pdf.page_count();
    (pdf.finish(), pages)
}

/// The global item of a redemption code: which vendor's unit it opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeClaim {
    pub owner_vendor: String,
    pub order_id: String,
    pub unit_number: u32,
}

/// The link a recipient opens: on the storefront's own host when it has one, else under the
/// platform's gift domain with the storefront's slug.
pub fn gift_link(
    link_base: &str,
    storefront_host: Option<&str>,
    storefront_slug: &str,
    code: &RedemptionCode,
) -> String {
    match storefront_host {
        Some(host) => format!("https://{host}/gifts/{}", code.display()),
        None => format!("{link_base}/{storefront_slug}/gifts/{}", code.display()),
    }
}

/// A gift link's QR code, as the email embeds it (PNG) and as print templates scale it (SVG).
pub struct QrImages {
    pub png: Vec<u8>,
    pub svg: String,
}

#[derive(Debug, thiserror::Error)]
#[error("QR code: {0}")]
pub struct QrError(String);

/// Quiet zone the QR specification asks for, in modules.
const QR_BORDER: i32 = 4;
/// Pixels per module in the PNG: ~300 px for a gift link, crisp on screens and phones.
const QR_PNG_SCALE: i32 = 8;

/// Renders `text` (a gift link) as a QR code with medium error correction (15 %: survives a
/// crease on a printed card).
pub fn qr_images(text: &str) -> Result<QrImages, QrError> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).map_err(|e| QrError(format!("{e:?}")))?;
    let modules = qr.size() + 2 * QR_BORDER;
    let dark = |x: i32, y: i32| qr.get_module(x - QR_BORDER, y - QR_BORDER);

    let mut path = String::new();
    for y in 0..modules {
        for x in 0..modules {
            if dark(x, y) {
                path.push_str(&format!("M{x},{y}h1v1h-1z"));
            }
        }
    }
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {modules} {modules}\" shape-rendering=\"crispEdges\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    );

    // One bit per pixel, most significant first, 1 = white.
    let pixels = (modules * QR_PNG_SCALE) as u32;
    let row_bytes = pixels.div_ceil(8) as usize;
    let mut data = vec![0u8; row_bytes * pixels as usize];
    for py in 0..pixels as i32 {
        for px in 0..pixels as i32 {
            if !dark(px / QR_PNG_SCALE, py / QR_PNG_SCALE) {
                data[py as usize * row_bytes + px as usize / 8] |= 0x80 >> (px % 8);
            }
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, pixels, pixels);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().map_err(|e| QrError(e.to_string()))?;
    writer.write_image_data(&data).map_err(|e| QrError(e.to_string()))?;
    writer.finish().map_err(|e| QrError(e.to_string()))?;
    Ok(QrImages { png, svg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_80_bits_in_16_characters() {
        assert_eq!(CODE_BITS, 80);
        assert_eq!(RedemptionCode::from_bits(&[0; 10]).as_str(), "0000000000000000");
        assert_eq!(RedemptionCode::from_bits(&[0xff; 10]).as_str(), "ZZZZZZZZZZZZZZZZ");
        // The lowest bit changes the last character: every bit is used.
        let mut one = [0u8; 10];
        one[9] = 1;
        assert_eq!(RedemptionCode::from_bits(&one).as_str(), "0000000000000001");
        let mut high = [0u8; 10];
        high[0] = 0x80;
        assert_eq!(RedemptionCode::from_bits(&high).as_str(), "G000000000000000");
    }

    #[test]
    fn fresh_codes_differ_and_read_back() {
        let codes: std::collections::HashSet<String> =
            (0..10_000).map(|_| RedemptionCode::generate().as_str().to_owned()).collect();
        assert_eq!(codes.len(), 10_000);
        let code = RedemptionCode::generate();
        assert_eq!(RedemptionCode::parse(&code.display()), Some(code.clone()));
        assert_eq!(code.display().len(), 19);
    }

    #[test]
    fn typing_is_forgiving_but_not_loose() {
        let code = RedemptionCode::parse("ABCD-EFGH-JKMN-PQRS").unwrap();
        assert_eq!(RedemptionCode::parse("abcd efgh jkmn pqrs"), Some(code.clone()));
        assert_eq!(RedemptionCode::parse("abcdefghjkmnpqrs"), Some(code));
        assert_eq!(RedemptionCode::parse("O0IL-0000-0000-0000").unwrap().as_str(), "0011000000000000");
        assert_eq!(RedemptionCode::parse("ABCD-EFGH-JKMN-PQR"), None, "too short");
        assert_eq!(RedemptionCode::parse("ABCD-EFGH-JKMN-PQRSU"), None, "U is not in the alphabet");
        assert_eq!(RedemptionCode::parse("ABCD-EFGH-JKMN-PQ#S"), None);
        assert_eq!(RedemptionCode::parse("ÄBCD-EFGH-JKMN-PQRS"), None);
    }

    #[test]
    fn qr_codes_decode_back_to_the_link() {
        let link = "https://gifts.demo-berlin.example/gifts/ABCD-EFGH-JKMN-PQRS";
        let images = qr_images(link).unwrap();
        assert!(images.svg.starts_with("<svg") && images.svg.contains("<path"));
        let decoder = png::Decoder::new(std::io::Cursor::new(&images.png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let row = info.line_size;
        let luma = |x: usize, y: usize| if buf[y * row + x / 8] & (0x80 >> (x % 8)) != 0 { 255u8 } else { 0 };
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, luma);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, link);
    }
}
