//! SMTP through the vendor's own server (lettre over tokio + rustls). Built from the vendor's
//! settings and its password; nothing else in the crate speaks SMTP.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::secrets::Redacted;
use crate::vendors::model::{SmtpSecurity, SmtpSettings};

const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// A reply or condition that may pass (4xx, timeout, connection refused).
    #[error("smtp, transient: {0}")]
    Transient(String),
    /// The server refused for good (5xx) or the message cannot be built.
    #[error("smtp, permanent: {0}")]
    Permanent(String),
}

/// One outgoing message.
pub struct Outgoing<'a> {
    pub to_email: &'a str,
    pub to_name: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// Stable per logical message, so receivers can drop a duplicate.
    pub message_id: &'a str,
    /// Images the HTML shows by `cid:<content id>` (a gift's QR code).
    pub inline_images: &'a [InlineImageData],
}

pub struct InlineImageData {
    pub content_id: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// text + HTML alternatives, wrapped with their inline images in multipart/related.
fn body(mail: &Outgoing<'_>) -> Result<MultiPart, SmtpError> {
    let alternatives = MultiPart::alternative_plain_html(mail.text.to_owned(), mail.html.to_owned());
    if mail.inline_images.is_empty() {
        return Ok(alternatives);
    }
    let mut related = MultiPart::related().multipart(alternatives);
    for image in mail.inline_images {
        let content_type = ContentType::parse(&image.content_type).map_err(|e| SmtpError::Permanent(e.to_string()))?;
        related = related
            .singlepart(Attachment::new_inline(image.content_id.clone()).body(image.bytes.clone(), content_type));
    }
    Ok(related)
}

pub struct SmtpClient {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpClient {
    pub fn new(settings: &SmtpSettings, password: &Redacted) -> Result<Self, SmtpError> {
        let permanent = |e: &dyn std::fmt::Display| SmtpError::Permanent(e.to_string());
        let builder = match settings.security {
            SmtpSecurity::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(|e| permanent(&e))?
            }
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host).map_err(|e| permanent(&e))?
            }
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
        };
        let transport = builder
            .port(settings.port)
            .credentials(Credentials::new(settings.username.clone(), password.expose().to_owned()))
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from_address = settings.from_email.parse().map_err(|e| permanent(&e))?;
        Ok(Self { transport, from: Mailbox::new(Some(settings.from_name.clone()), from_address) })
    }

    pub async fn send(&self, mail: &Outgoing<'_>) -> Result<(), SmtpError> {
        let to_address =
            mail.to_email.parse().map_err(|e: lettre::address::AddressError| SmtpError::Permanent(e.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(mail.to_name.map(str::to_owned), to_address))
            .subject(mail.subject)
            .message_id(Some(mail.message_id.to_owned()))
            .multipart(body(mail)?)
            .map_err(|e| SmtpError::Permanent(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(err) if err.is_permanent() => Err(SmtpError::Permanent(err.to_string())),
            // 4xx replies, timeouts, refused connections: worth another try.
            Err(err) => Err(SmtpError::Transient(err.to_string())),
        }
    }
}
