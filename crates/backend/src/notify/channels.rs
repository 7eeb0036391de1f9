//! The four kinds of channel: what each sends for an event, and how a channel's settings are
//! checked when an admin stores them.
//!
//! Every send is one attempt with the caller's deadline. Its error says whether another
//! attempt can help ([`SendError::Retry`]: the receiver was down, slow, or answered 5xx, 408
//! or 429) or not ([`SendError::Permanent`]: it refused the request, which only a change of
//! the channel can fix).

use chrono::{DateTime, Utc};
use lettre::{AsyncTransport, Message as Mail, message::header::ContentType};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::mailer::Mailer;
use crate::db::notifications::{ChannelType, EventType};
use aegis_common::webhooks as signing;

/// One notification, as every channel renders it.
#[derive(Debug, Clone)]
pub struct Notice<'a> {
    /// The event id: the idempotency key.
    pub id: Uuid,
    /// What it reports.
    pub event_type: EventType,
    /// `low` to `critical`.
    pub severity: &'a str,
    /// The namespace, if any.
    pub namespace: Option<&'a str>,
    /// The event's data.
    pub payload: &'a Value,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The backend's public base URL.
    pub public_url: &'a str,
}

impl Notice<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    /// `namespace/deployment` (or the scope of a mode change).
    #[must_use]
    pub fn workload(&self) -> String {
        match (self.text("namespace"), self.text("deployment")) {
            (Some(ns), Some(d)) => format!("{ns}/{d}"),
            _ => match self.text("scope") {
                Some("*") => "every namespace".to_owned(),
                Some(scope) => format!("namespace {scope}"),
                None => "-".to_owned(),
            },
        }
    }

    /// The action, as `type` plus its parameters in short.
    #[must_use]
    pub fn action(&self) -> String {
        let Some(action) = self
            .text("actionType")
            .or_else(|| self.text("recommendedAction"))
        else {
            return "none".to_owned();
        };
        let params = self.payload.get("actionParams");
        let detail = params
            .and_then(|p| p.get("replicas"))
            .map(|r| format!(" to {r} replicas"))
            .or_else(|| {
                params
                    .and_then(|p| p.get("revision"))
                    .map(|r| format!(" to revision {r}"))
            })
            .or_else(|| {
                params
                    .and_then(|p| p.get("podName"))
                    .and_then(Value::as_str)
                    .map(|p| format!(" of pod {p}"))
            })
            .unwrap_or_default();
        format!("{action}{detail}")
    }

    /// One line: what happened.
    #[must_use]
    pub fn headline(&self) -> String {
        match self.event_type {
            EventType::ModeChanged => format!(
                "Remediation mode for {} is now {}",
                self.workload(),
                self.text("to").unwrap_or("the global mode")
            ),
            EventType::Test => "Aegis test notification".to_owned(),
            other => format!(
                "Incident {}: {}",
                other.as_str().replace('_', " "),
                self.workload()
            ),
        }
    }

    /// Why, when the step said.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        self.text("reason")
    }

    /// The incident's address, if it is about one.
    #[must_use]
    pub fn link(&self) -> Option<String> {
        self.text("incidentId")
            .map(|id| format!("{}/api/v1/remediation/incidents/{id}", self.public_url))
    }

    /// The body of a generic webhook: the Standard Webhooks envelope.
    #[must_use]
    pub fn envelope(&self) -> Value {
        json!({
            "type": format!("aegis.{}", self.event_type.as_str()),
            "timestamp": aegis_common::time::rfc3339_millis(self.at),
            "data": {
                "eventId": self.id,
                "severity": self.severity,
                "namespace": self.namespace,
                "summary": self.headline(),
                "link": self.link(),
                "detail": self.payload,
            },
        })
    }

    /// A Slack Block Kit message: what happened, the workload, the action, the outcome and
    /// a link to the incident.
    #[must_use]
    pub fn slack(&self) -> Value {
        let mut fields = vec![
            json!({"type": "mrkdwn", "text": format!("*Workload*\n{}", self.workload())}),
            json!({"type": "mrkdwn", "text": format!("*Severity*\n{}", self.severity)}),
        ];
        if self.event_type == EventType::ModeChanged {
            fields.push(json!({"type": "mrkdwn", "text": format!("*Changed by*\n{}", self.text("changedBy").unwrap_or("-"))}));
        } else {
            fields.push(json!({"type": "mrkdwn", "text": format!("*Action*\n{}", self.action())}));
            fields.push(json!({"type": "mrkdwn", "text": format!("*Outcome*\n{}", self.text("status").unwrap_or("-").replace('_', " "))}));
        }
        let mut blocks = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&self.headline(), 150)}}),
            json!({"type": "section", "fields": fields}),
        ];
        if let Some(reason) = self.reason() {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(reason, 2900)}}));
        }
        let mut context = format!("event {}", self.id);
        if let Some(link) = self.link() {
            context = format!("<{link}|Open the incident> · {context}");
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
        json!({"text": self.headline(), "blocks": blocks})
    }

    /// The Alertmanager alert of an incident event: firing while the incident waits for
    /// approval (until the approval expires) and after it failed or escalated (for `hold`),
    /// resolved (`endsAt` at the event's time) by any later event of the incident. `None` for
    /// events that are not about an incident, and for `opened`, which asks nobody anything.
    #[must_use]
    pub fn alert(&self, hold: std::time::Duration) -> Option<Value> {
        if self.event_type == EventType::Opened {
            return None;
        }
        let incident = self.text("incidentId")?;
        let ends = match self.event_type {
            EventType::AwaitingApproval => self
                .text("approvalExpiresAt")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(
                    || self.at + chrono::Duration::hours(1),
                    |t| t.with_timezone(&Utc),
                ),
            EventType::Failed | EventType::Escalated => {
                self.at + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::days(1))
            }
            _ => self.at,
        };
        let created = self
            .text("createdAt")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(self.at, |t| t.with_timezone(&Utc));
        Some(json!([{
            "labels": {
                "alertname": "AegisRemediation",
                "incident_id": incident,
                "namespace": self.text("namespace").unwrap_or(""),
                "deployment": self.text("deployment").unwrap_or(""),
                "severity": self.severity,
                "service": "aegis",
            },
            "annotations": {
                "summary": self.headline(),
                "description": self.reason().unwrap_or(""),
                "status": self.text("status").unwrap_or(""),
                "action": self.action(),
                "incident_url": self.link().unwrap_or_default(),
            },
            "startsAt": aegis_common::time::rfc3339_millis(created.min(self.at)),
            "endsAt": aegis_common::time::rfc3339_millis(ends),
            "generatorURL": self.link().unwrap_or_default(),
        }]))
    }

    /// A plain-text e-mail body.
    #[must_use]
    pub fn mail_body(&self) -> String {
        let mut body = format!(
            "{}\n\nWorkload: {}\nSeverity: {}\n",
            self.headline(),
            self.workload(),
            self.severity
        );
        if self.event_type != EventType::ModeChanged {
            body.push_str(&format!(
                "Action: {}\nOutcome: {}\n",
                self.action(),
                self.text("status").unwrap_or("-").replace('_', " ")
            ));
        }
        if let Some(reason) = self.reason() {
            body.push_str(&format!("\n{reason}\n"));
        }
        if let Some(link) = self.link() {
            body.push_str(&format!("\n{link}\n"));
        }
        body.push_str(&format!("\nEvent {}\n", self.id));
        body
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Another attempt may work.
    #[error("{0}")]
    Retry(String),
    /// Only a change of the channel can make it work.
    #[error("{0}")]
    Permanent(String),
}

/// What a send needs besides the notice.
#[derive(Debug, Clone, Copy)]
pub struct Senders<'a> {
    /// HTTP client (its deadline is the caller's).
    pub http: &'a reqwest::Client,
    /// SMTP, when configured.
    pub mailer: &'a Mailer,
    /// How long a failed or escalated incident fires in Alertmanager.
    pub alertmanager_hold: std::time::Duration,
}

/// A channel to send to.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Its type.
    pub channel_type: ChannelType,
    /// Its shown settings.
    pub config: &'a Value,
    /// Its secret.
    pub secret: Option<&'a SecretString>,
}

/// One attempt to deliver `notice` to `target`.
pub async fn send(
    senders: Senders<'_>,
    target: Target<'_>,
    notice: &Notice<'_>,
) -> Result<(), SendError> {
    match target.channel_type {
        ChannelType::Slack => {
            let url = target.secret.ok_or_else(|| {
                SendError::Permanent("the Slack channel has no webhook URL".into())
            })?;
            post(senders.http.post(url.expose_secret()).json(&notice.slack())).await
        }
        ChannelType::Webhook => {
            let url = config_url(target.config)?;
            let secret = target.secret.ok_or_else(|| {
                SendError::Permanent("the webhook channel has no signing secret".into())
            })?;
            let key = signing::key(secret.expose_secret())
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            let body = serde_json::to_vec(&notice.envelope())
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            let id = notice.id.to_string();
            let timestamp = Utc::now().timestamp();
            let request = senders
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header(
                    "webhook-signature",
                    signing::signature(&key, &id, timestamp, &body),
                )
                .body(body);
            post(request).await
        }
        ChannelType::Alertmanager => {
            let Some(alert) = notice.alert(senders.alertmanager_hold) else {
                // Mode changes and tests are not alerts; a route sending them here is harmless.
                return Ok(());
            };
            let url = format!(
                "{}/api/v2/alerts",
                config_url(target.config)?.trim_end_matches('/')
            );
            let mut request = senders.http.post(url).json(&alert);
            if let Some(token) = target.secret {
                request = request.bearer_auth(token.expose_secret());
            }
            post(request).await
        }
        ChannelType::Email => {
            let Mailer::Smtp { transport, from } = senders.mailer else {
                return Err(SendError::Permanent(
                    "SMTP is not configured (SMTP_URL or SMTP_HOST)".into(),
                ));
            };
            let recipients = recipients(target.config).map_err(SendError::Permanent)?;
            let mut builder = Mail::builder()
                .from(from.clone())
                .subject(format!("[Aegis] {}", truncate(&notice.headline(), 150)))
                .message_id(Some(format!("<{}@aegis>", notice.id)))
                .header(ContentType::TEXT_PLAIN);
            for to in recipients {
                builder = builder.to(to.parse().map_err(|_| {
                    SendError::Permanent(format!("{to:?} is not an e-mail address"))
                })?);
            }
            let mail = builder
                .body(notice.mail_body())
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            transport.send(mail).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(format!("SMTP refused the message: {e}"))
                } else {
                    SendError::Retry(format!("SMTP delivery failed: {e}"))
                }
            })
        }
    }
}

/// Sends and sorts the answer: 2xx delivered; 408, 425, 429 and 5xx worth retrying; other
/// 4xx permanent.
async fn post(request: reqwest::RequestBuilder) -> Result<(), SendError> {
    let response = request.send().await.map_err(|e| {
        SendError::Retry(format!("could not reach the receiver: {}", without_url(&e)))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // At most 1 KiB of the answer is read: enough to say why, never a receiver's whole page.
    let mut response = response;
    let mut raw = Vec::new();
    while raw.len() < 1024 {
        match response.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let body: String = String::from_utf8_lossy(&raw).chars().take(200).collect();
    let message = format!("the receiver answered {status}: {body}");
    if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
        Err(SendError::Retry(message))
    } else {
        Err(SendError::Permanent(message))
    }
}

/// A request error without its URL: a Slack webhook URL is a credential.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(at) = e.find(" for url (") {
        e.truncate(at);
    }
    e
}

fn config_url(config: &Value) -> Result<&str, SendError> {
    config
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| SendError::Permanent("the channel has no url".into()))
}

fn recipients(config: &Value) -> Result<Vec<&str>, String> {
    let list = config
        .get("to")
        .and_then(Value::as_array)
        .ok_or("config.to must list the recipients")?;
    list.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "config.to must list e-mail addresses".to_owned())
        })
        .collect()
}

/// Checks a channel's settings before they are stored: one message per broken rule.
#[must_use]
pub fn check(
    channel_type: ChannelType,
    config: &Value,
    secret: Option<&str>,
    smtp_configured: bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    if !config.is_object() {
        errors.push("config must be an object".to_owned());
        return errors;
    }
    let url_ok = |raw: &str, what: &str, errors: &mut Vec<String>| match reqwest::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if !u.username().is_empty() || u.password().is_some() {
                errors.push(format!(
                    "{what} must not hold credentials: put them in the secret"
                ));
            }
        }
        _ => errors.push(format!("{what} must be an http or https URL")),
    };
    let allowed: &[&str] = match channel_type {
        ChannelType::Slack => &[],
        ChannelType::Webhook | ChannelType::Alertmanager => &["url"],
        ChannelType::Email => &["to"],
    };
    if let Some(map) = config.as_object() {
        for key in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            errors.push(format!(
                "config.{key} is not a setting of a {} channel",
                channel_type.as_str()
            ));
        }
    }
    match channel_type {
        ChannelType::Slack => match secret {
            Some(url) => url_ok(url, "secret (the Slack webhook URL)", &mut errors),
            None => errors.push("secret must be the Slack incoming webhook URL".to_owned()),
        },
        ChannelType::Webhook => {
            match config.get("url").and_then(Value::as_str) {
                Some(url) => url_ok(url, "config.url", &mut errors),
                None => errors.push("config.url is required".to_owned()),
            }
            match secret.map(signing::key) {
                Some(Ok(_)) => {}
                Some(Err(e)) => errors.push(e.to_string()),
                None => errors.push(format!(
                    "secret is required: the signing secret, \"{}\" followed by base64",
                    signing::PREFIX
                )),
            }
        }
        ChannelType::Alertmanager => match config.get("url").and_then(Value::as_str) {
            Some(url) => url_ok(url, "config.url", &mut errors),
            None => errors.push("config.url is required (Alertmanager's base URL)".to_owned()),
        },
        ChannelType::Email => {
            if !smtp_configured {
                errors.push(
                    "e-mail channels need the backend's SMTP settings (SMTP_URL or SMTP_HOST)"
                        .to_owned(),
                );
            }
            match recipients(config) {
                Ok(list) if (1..=20).contains(&list.len()) => {
                    for to in list {
                        if to.parse::<lettre::message::Mailbox>().is_err() {
                            errors.push(format!("config.to: {to:?} is not an e-mail address"));
                        }
                    }
                }
                Ok(_) => errors.push("config.to must list 1 to 20 recipients".to_owned()),
                Err(e) => errors.push(e),
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(event_type: EventType, payload: &Value) -> Notice<'_> {
        Notice {
            id: Uuid::nil(),
            event_type,
            severity: "high",
            namespace: Some("shop"),
            payload,
            at: DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            public_url: "https://aegis.example",
        }
    }

    #[test]
    fn slack_names_the_workload_the_action_the_outcome_and_links_the_incident() {
        let payload = json!({
            "incidentId": "7d1c", "namespace": "shop", "deployment": "web", "status": "awaiting_approval",
            "actionType": "scale_deployment", "actionParams": {"replicas": 5},
            "reason": "a scale to more than 2 times needs approval"
        });
        let msg = notice(EventType::AwaitingApproval, &payload).slack();
        let text = msg.to_string();
        assert_eq!(msg["blocks"][0]["type"], "header");
        assert_eq!(
            msg["blocks"][0]["text"]["text"],
            "Incident awaiting approval: shop/web"
        );
        for needle in [
            "*Workload*\\nshop/web",
            "*Action*\\nscale_deployment to 5 replicas",
            "*Outcome*\\nawaiting approval",
            "needs approval",
            "<https://aegis.example/api/v1/remediation/incidents/7d1c|Open the incident>",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn an_awaiting_approval_alert_fires_until_the_approval_expires_and_others_resolve() {
        let hold = std::time::Duration::from_secs(3600);
        let waiting = json!({"incidentId": "i1", "namespace": "shop", "deployment": "web",
                             "approvalExpiresAt": "2026-12-06T10:30:00Z", "createdAt": "2026-12-06T09:59:00Z"});
        let alert = notice(EventType::AwaitingApproval, &waiting)
            .alert(hold)
            .unwrap();
        assert_eq!(alert[0]["labels"]["incident_id"], "i1");
        assert_eq!(alert[0]["startsAt"], "2026-12-06T09:59:00.000Z");
        assert_eq!(alert[0]["endsAt"], "2026-12-06T10:30:00.000Z");
        let failed = notice(EventType::Failed, &waiting).alert(hold).unwrap();
        assert_eq!(failed[0]["endsAt"], "2026-12-06T11:00:00.000Z");
        let approved = notice(EventType::Executing, &waiting).alert(hold).unwrap();
        assert_eq!(approved[0]["endsAt"], "2026-12-06T10:00:00.000Z");
        assert!(
            notice(EventType::ModeChanged, &json!({"scope": "*"}))
                .alert(hold)
                .is_none()
        );
        assert!(notice(EventType::Opened, &waiting).alert(hold).is_none());
    }

    #[test]
    fn settings_are_checked_per_type() {
        let ok = check(
            ChannelType::Webhook,
            &json!({"url": "https://h.example/x"}),
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            false,
        );
        assert!(ok.is_empty(), "{ok:?}");
        let bad = check(
            ChannelType::Webhook,
            &json!({"url": "https://u:p@h.example", "x": 1}),
            Some("nope"),
            false,
        );
        assert_eq!(bad.len(), 3, "{bad:?}");
        let slack = check(ChannelType::Slack, &json!({}), None, false);
        assert_eq!(slack, ["secret must be the Slack incoming webhook URL"]);
        let mail = check(
            ChannelType::Email,
            &json!({"to": ["oncall@example.com"]}),
            None,
            false,
        );
        assert_eq!(mail.len(), 1, "without SMTP: {mail:?}");
        let mail = check(
            ChannelType::Email,
            &json!({"to": ["not an address"]}),
            None,
            true,
        );
        assert_eq!(mail.len(), 1, "{mail:?}");
        let am = check(
            ChannelType::Alertmanager,
            &json!({"url": "ftp://am"}),
            None,
            false,
        );
        assert_eq!(am.len(), 1, "{am:?}");
    }
}
