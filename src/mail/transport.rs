//! Where delivered mail goes: `.eml` files written atomically, the log (metadata only —
//! bodies may hold links), or an SMTP relay (STARTTLS, implicit TLS, or none).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::config::{MailSetting, Settings};
use crate::store::OutboxMessage;

/// Why a delivery did not happen; permanent failures are not retried.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    pub permanent: bool,
    pub message: String,
}

impl DeliveryError {
    fn transient(message: impl Into<String>) -> Self {
        DeliveryError {
            permanent: false,
            message: message.into(),
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        DeliveryError {
            permanent: true,
            message: message.into(),
        }
    }
}

pub enum Transport {
    File(PathBuf),
    Log,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Transport> {
        Ok(match &settings.mail {
            MailSetting::File => Transport::File(settings.mail_dir()),
            MailSetting::Log => Transport::Log,
            MailSetting::Smtp(url) => Transport::Smtp(smtp(url).context("mail (DIALTONE_MAIL)")?),
        })
    }

    /// Delivers one message; returns the relay's answer (or a note of where it went).
    pub async fn deliver(
        &self,
        from: &Mailbox,
        m: &OutboxMessage,
        text: String,
        html: String,
    ) -> Result<String, DeliveryError> {
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|_| DeliveryError::permanent("the recipient address is not valid"))?;
        let host = from.email.domain().to_owned();
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!(
                "<dialtone.{}.{}@{host}>",
                m.id, m.queued_at.0
            )))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| DeliveryError::permanent(format!("cannot build the message: {e}")))?;
        match self {
            Transport::File(dir) => write_eml(dir, m, &message.formatted())
                .await
                .map_err(|e| DeliveryError::transient(format!("cannot write the mail file: {e}"))),
            Transport::Log => {
                tracing::info!(to = %m.recipient, kind = %m.kind, subject = %m.subject, "mail (log transport; body withheld)");
                Ok("logged".to_owned())
            }
            Transport::Smtp(smtp) => match smtp.send(message).await {
                Ok(response) => Ok(format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )),
                Err(e) if e.is_permanent() => Err(DeliveryError::permanent(e.to_string())),
                Err(e) => Err(DeliveryError::transient(e.to_string())),
            },
        }
    }
}

/// One RFC 5322 file per message, written to a temporary name and renamed into place so a
/// reader never sees half a message. The name is fixed per message, so a redelivery after a
/// crash replaces the file instead of adding a second one.
async fn write_eml(
    dir: &std::path::Path,
    m: &OutboxMessage,
    bytes: &[u8],
) -> std::io::Result<String> {
    let name = format!("{}-{:08}-{}.eml", m.queued_at.0, m.id, m.kind);
    let dir = dir.to_owned();
    let bytes = bytes.to_owned();
    // 0700 directory, 0600 files: a message may hold a live reset link.
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        use std::io::Write;
        crate::private_files::private_dir(&dir)?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut file = crate::private_files::private_options().open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(&name))?;
        Ok(format!("written to {name}"))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// `smtp://user:pass@host:port` (STARTTLS required; `?tls=none` or `?tls=opportunistic`
/// to relax it) or `smtps://…` (implicit TLS).
fn smtp(url: &Url) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("the SMTP URL needs a host"))?
        .to_owned();
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let builder = match (url.scheme(), tls.as_deref()) {
        ("smtps", None | Some("implicit")) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)?,
        ("smtp", None | Some("starttls")) => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)?
        }
        ("smtp", Some("opportunistic")) => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
                .tls(Tls::Opportunistic(TlsParameters::new(host.clone())?))
        }
        ("smtp", Some("none")) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        (_, Some(other)) => {
            bail!("tls={other} is not one of starttls, opportunistic, none, implicit")
        }
        (scheme, None) => bail!("{scheme}:// is not an SMTP URL"),
    };
    let mut builder = builder.timeout(Some(Duration::from_secs(20)));
    if let Some(port) = url.port() {
        builder = builder.port(port);
    }
    if !url.username().is_empty() {
        let user = percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        let pass = percent_decode_str(url.password().unwrap_or(""))
            .decode_utf8_lossy()
            .into_owned();
        builder = builder.credentials(Credentials::new(user, pass));
    }
    Ok(builder.build())
}
