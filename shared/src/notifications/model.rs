//! Email templates and their rendering: `{{name}}` placeholders, HTML-escaped in the HTML
//! part. A placeholder without a value is an error, never an empty hole in a sent email.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailTemplate {
    /// Confirms a vendor's SMTP settings by sending through them.
    SmtpTest,
    /// A recipient's gift link.
    GiftNotification,
    /// A recipient's gift has shipped: carrier and tracking number.
    ShipmentNotification,
    /// A recipient has not redeemed the gift yet.
    GiftReminder,
}

struct TemplateText {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

impl EmailTemplate {
    fn text(self) -> TemplateText {
        match self {
            Self::SmtpTest => TemplateText {
                subject: include_str!("../../templates/email/smtp_test.subject.txt"),
                text: include_str!("../../templates/email/smtp_test.txt"),
                html: include_str!("../../templates/email/smtp_test.html"),
            },
            Self::GiftNotification => TemplateText {
                subject: include_str!("../../templates/email/gift_notification.subject.txt"),
                text: include_str!("../../templates/email/gift_notification.txt"),
                html: include_str!("../../templates/email/gift_notification.html"),
            },
            Self::ShipmentNotification => TemplateText {
                subject: include_str!("../../templates/email/shipment_notification.subject.txt"),
                text: include_str!("../../templates/email/shipment_notification.txt"),
                html: include_str!("../../templates/email/shipment_notification.html"),
            },
            Self::GiftReminder => TemplateText {
                subject: include_str!("../../templates/email/gift_reminder.subject.txt"),
                text: include_str!("../../templates/email/gift_reminder.txt"),
                html: include_str!("../../templates/email/gift_reminder.html"),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("template placeholder {{{{{0}}}}} has no value")]
pub struct MissingValue(pub String);

fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn fill(template: &str, vars: &BTreeMap<String, String>, escape: bool) -> Result<String, MissingValue> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| MissingValue(name.to_owned()))?;
        out.push_str(&if escape { escape_html(value) } else { value.clone() });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl EmailTemplate {
    pub fn render(self, vars: &BTreeMap<String, String>) -> Result<RenderedEmail, MissingValue> {
        let t = self.text();
        Ok(RenderedEmail {
            // A subject is one line whatever a value holds.
            subject: fill(t.subject.trim(), vars, false)?.replace(['\r', '\n'], " "),
            text: fill(t.text, vars, false)?,
            html: fill(t.html, vars, true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn renders_both_parts_and_escapes_only_html() {
        let email = EmailTemplate::GiftNotification
            .render(&vars(&[
                ("recipient_name", "Ana"),
                ("sender_name", "Acme <Corp>\nBcc: x@y"),
                ("vendor_name", "Demo Gifts"),
                ("gift_message", "Thanks & well done"),
                ("gift_link", "https://gifts.example/g/ABCD"),
                ("gift_code", "ABCD-EFGH-JKMN-PQRS"),
                ("expires_on", "2027-01-31"),
            ]))
            .unwrap();
        assert_eq!(email.subject, "Acme <Corp> Bcc: x@y sent you a gift");
        assert!(email.text.contains("Thanks & well done"));
        assert!(email.html.contains("Thanks &amp; well done"));
        assert!(email.html.contains("Acme &lt;Corp&gt;"));
        assert!(email.html.contains("href=\"https://gifts.example/g/ABCD\""));
        assert!(!email.html.contains("{{"));
    }

    #[test]
    fn a_missing_value_is_an_error() {
        let err = EmailTemplate::SmtpTest.render(&vars(&[("vendor_name", "V")])).unwrap_err();
        assert_eq!(err, MissingValue("smtp_host".into()));
    }
}
