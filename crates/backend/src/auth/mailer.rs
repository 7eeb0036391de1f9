//! Password-reset mail: SMTP (lettre, rustls with ring) when `SMTP_URL` or `SMTP_HOST` is set;
//! otherwise nothing is sent and the caller logs the link in development only.

use anyhow::Context as _;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox,
    message::header::ContentType,
};
use secrecy::ExposeSecret;

use super::config::AuthConfig;

/// Where reset mails go.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP relay.
    Smtp {
        /// Transport (pooled).
        transport: Box<AsyncSmtpTransport<Tokio1Executor>>,
        /// Sender.
        from: Mailbox,
    },
    /// No relay configured.
    Disabled,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { from, .. } => f
                .debug_struct("Smtp")
                .field("from", &from.to_string())
                .finish(),
            Mailer::Disabled => f.write_str("Disabled"),
        }
    }
}

impl Mailer {
    /// From the settings; an invalid URL or sender is a start-up error.
    pub fn from_config(cfg: &AuthConfig) -> anyhow::Result<Self> {
        let Some(url) = &cfg.smtp_url else {
            return Ok(Mailer::Disabled);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .context("SMTP_URL is invalid")?
            .build();
        let transport = Box::new(transport);
        let from: Mailbox = cfg
            .smtp_from
            .parse()
            .context("SMTP_FROM is not a valid address")?;
        Ok(Mailer::Smtp { transport, from })
    }

    /// Whether mail is configured.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        matches!(self, Mailer::Smtp { .. })
    }

    /// Sends the reset link to `to`.
    pub async fn send_reset(&self, to: &str, link: &str, valid_minutes: u64) -> anyhow::Result<()> {
        let Mailer::Smtp { transport, from } = self else {
            return Ok(());
        };
        let message = Message::builder()
            .from(from.clone())
            .to(to.parse().context("recipient is not a valid address")?)
            .subject("Reset your Aegis password")
            .header(ContentType::TEXT_PLAIN)
            .body(format!(
                "A password reset was requested for your Aegis account.\n\n\
                 Open this link within {valid_minutes} minutes to choose a new password:\n{link}\n\n\
                 If you did not ask for this, ignore this e-mail.\n"
            ))
            .context("failed to build the reset e-mail")?;
        transport
            .send(message)
            .await
            .context("SMTP delivery failed")?;
        Ok(())
    }
}
