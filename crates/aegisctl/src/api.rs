//! The backend's REST API as the CLI uses it: bearer auth, one transparent refresh of an
//! expired access token, and every answer turned into a value or a [`Failure`] with the
//! backend's own message.

use std::{path::PathBuf, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    Failure,
    credentials::{self, Credentials},
};

/// The API prefix of the backend.
pub const PREFIX: &str = "/api/v1";

/// The largest answer read; anything larger is refused rather than held in memory.
const ANSWER_LIMIT: usize = 32 * 1024 * 1024;

/// An answer and the server's clock when it gave it.
type Dated = (Value, Option<chrono::DateTime<chrono::FixedOffset>>);

/// A signed-in (or signing-in) connection to one backend.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    server: String,
    credentials: Option<Credentials>,
    path: PathBuf,
}

impl Api {
    /// A client for `server` (no trailing slash needed) that keeps its tokens at `path`.
    pub fn new(
        server: &str,
        credentials: Option<Credentials>,
        path: PathBuf,
    ) -> Result<Self, Failure> {
        let server = server.trim_end_matches('/').to_owned();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(Failure::Usage(format!(
                "the server must be an http:// or https:// URL, got {server:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            // A login body must never be re-sent to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("aegisctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            server,
            credentials,
            path,
        })
    }

    /// The backend's base URL.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The stored credentials, if logged in.
    #[must_use]
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// `POST /auth/login`; keeps the tokens in the token file.
    pub async fn login(&mut self, email: &str, password: &str) -> Result<Value, Failure> {
        let body = json!({"email": email, "password": password});
        let (answer, _) = self
            .send(Method::POST, "/auth/login", Some(&body), None)
            .await?;
        let access_token = answer["accessToken"]
            .as_str()
            .ok_or_else(|| Failure::Unavailable("the login answer holds no accessToken".into()))?
            .to_owned();
        let credentials = Credentials {
            server: self.server.clone(),
            email: email.to_owned(),
            access_token,
            refresh_token: answer["refreshToken"].as_str().map(str::to_owned),
        };
        credentials::save(&self.path, &credentials)?;
        self.credentials = Some(credentials);
        Ok(answer)
    }

    /// Removes the token file; `true` when there was one. With `everywhere`, first
    /// `POST /auth/logout`, which revokes every refresh token of the user (every session, not
    /// only this one), and fails when the backend does not confirm it.
    pub async fn logout(&mut self, everywhere: bool) -> Result<bool, Failure> {
        if everywhere {
            self.call(Method::POST, "/auth/logout", None).await?;
        }
        self.credentials = None;
        credentials::remove(&self.path)
    }

    /// `GET` under the API prefix, signed in.
    pub async fn get(&mut self, path: &str) -> Result<Value, Failure> {
        Ok(self.call(Method::GET, path, None).await?.0)
    }

    /// [`Api::get`], with the server's clock at the answer (its `Date` header), if it sent one.
    pub async fn get_dated(
        &mut self,
        path: &str,
    ) -> Result<(Value, Option<chrono::DateTime<chrono::FixedOffset>>), Failure> {
        self.call(Method::GET, path, None).await
    }

    /// `POST` under the API prefix, signed in.
    pub async fn post(&mut self, path: &str, body: &Value) -> Result<Value, Failure> {
        Ok(self.call(Method::POST, path, Some(body)).await?.0)
    }

    /// A signed-in call; on a 401 the access token is refreshed once and the call repeated.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Dated, Failure> {
        let token = self
            .credentials
            .as_ref()
            .map(|c| c.access_token.clone())
            .ok_or_else(|| {
                Failure::Unauthenticated(format!(
                    "not logged in to {}: run `aegisctl login`",
                    self.server
                ))
            })?;
        match self.send(method.clone(), path, body, Some(&token)).await {
            Err(Failure::Unauthenticated(first)) => {
                if !self.refresh().await {
                    return Err(Failure::Unauthenticated(format!(
                        "{first} (the session has ended: run `aegisctl login`)"
                    )));
                }
                let token = self
                    .credentials
                    .as_ref()
                    .map(|c| c.access_token.clone())
                    .unwrap_or_default();
                self.send(method, path, body, Some(&token)).await
            }
            other => other,
        }
    }

    /// Gets a working access token after a 401; `true` when there is one to retry with.
    ///
    /// Another aegisctl may have refreshed since this one read the token file: its pair is the
    /// live one, and presenting the refresh token this process holds, already spent, would make
    /// the backend revoke the whole session. So the file is read again first, and only when it
    /// holds nothing newer is the refresh token rotated. The new pair is kept in memory even if
    /// it cannot be saved (a warning says so), so this process goes on working.
    async fn refresh(&mut self) -> bool {
        let Some(mut credentials) = self.credentials.clone() else {
            return false;
        };
        if let Ok(Some(on_disk)) = credentials::load(&self.path)
            && on_disk.server == credentials.server
            && on_disk.access_token != credentials.access_token
        {
            self.credentials = Some(on_disk);
            return true;
        }
        let Some(refresh) = credentials.refresh_token.clone() else {
            return false;
        };
        let Ok((answer, _)) = self
            .send(Method::POST, "/auth/refresh", None, Some(&refresh))
            .await
        else {
            return false;
        };
        let Some(access) = answer["accessToken"].as_str() else {
            return false;
        };
        credentials.access_token = access.to_owned();
        credentials.refresh_token = answer["refreshToken"]
            .as_str()
            .map(str::to_owned)
            .or(credentials.refresh_token);
        if let Err(e) = credentials::save(&self.path, &credentials) {
            eprintln!("aegisctl: warning: the refreshed tokens could not be kept: {e}");
        }
        self.credentials = Some(credentials);
        true
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<Dated, Failure> {
        let url = format!("{}{PREFIX}{path}", self.server);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                // Without the URL: it may carry a query the user typed, never a secret, but
                // the message names the server once below anyway.
                e.without_url().to_string()
            };
            Failure::Unavailable(format!("{method} {PREFIX}{path} at {}: {why}", self.server))
        })?;
        let status = response.status();
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok());
        let mut response = response;
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > ANSWER_LIMIT {
                        return Err(Failure::Unavailable(format!(
                            "{method} {PREFIX}{path}: the answer is larger than {} MiB",
                            ANSWER_LIMIT / (1024 * 1024)
                        )));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure::Unavailable(format!(
                        "{method} {PREFIX}{path}: the answer was cut off: {}",
                        e.without_url()
                    )));
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
        };
        if status.is_success() {
            return Ok((value, date));
        }
        let message = format!("{method} {PREFIX}{path}: {status}: {}", message_of(&value));
        Err(match status {
            StatusCode::UNAUTHORIZED => Failure::Unauthenticated(message),
            StatusCode::FORBIDDEN => Failure::Forbidden(message),
            StatusCode::NOT_FOUND => Failure::NotFound(message),
            s if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS => {
                Failure::Refused(message)
            }
            _ => Failure::Unavailable(message),
        })
    }
}

/// The backend's error message: `message` (a string, or a list of them), else the body.
#[must_use]
pub fn message_of(body: &Value) -> String {
    match &body["message"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        _ => match body {
            Value::String(s) => s.chars().take(300).collect(),
            Value::Null => "(no body)".to_owned(),
            other => other.to_string().chars().take(300).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_backend_body() {
        assert_eq!(message_of(&json!({"message": "nope"})), "nope");
        assert_eq!(message_of(&json!({"message": ["a", "b"]})), "a; b");
        assert_eq!(message_of(&Value::Null), "(no body)");
        assert_eq!(message_of(&json!("plain")), "plain");
    }

    #[test]
    fn a_server_must_be_an_http_url() {
        let err = Api::new("127.0.0.1:3000", None, PathBuf::from("x")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(Api::new("http://127.0.0.1:3000/", None, PathBuf::from("x")).is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_exit_7_quickly() {
        // A port nothing listens on (bound, then released): the connection is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let mut api = Api::new(
            &server,
            Some(Credentials {
                server: server.clone(),
                email: String::new(),
                access_token: "t".into(),
                refresh_token: None,
            }),
            PathBuf::from("unused"),
        )
        .unwrap();
        let err = api.get("/remediation/incidents").await.unwrap_err();
        assert_eq!(err.exit_code(), 7, "{err}");
        assert!(err.to_string().contains("could not connect"), "{err}");
    }
}
