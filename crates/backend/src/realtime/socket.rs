//! The Socket.IO v4 gateway at `/socket.io/`: only clients presenting a valid access token
//! (`auth.token` in the handshake, else `?token=`) of an active user may connect; others get a
//! connect error `{"message": "Unauthorized"}`. Each [`super::Hub`] event goes to the sockets
//! allowed to see it as one argument `{event, data}`: `remediation` only to users who may read
//! incidents through REST (admins, auditors, operators), everything else to every socket.
//!
//! A socket lives no longer than what authenticated it:
//! - at its access token's expiry it is disconnected, unless the client sent a fresh token
//!   of the same user with the `authenticate` event (acknowledged with `{"ok": true,
//!   "expiresAt": …}`);
//! - when the user's sessions end (logout, deactivation, a password change or reset) the
//!   replica that ended them disconnects the user's sockets at once, and every replica checks
//!   its sockets against the database every [`SESSION_CHECK`] (which also follows role
//!   changes into and out of the incident readers).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone as _, Utc};
use prometheus::IntGauge;
use socketioxide::{
    SocketIo,
    extract::{AckSender, Data, SocketRef, State, TryData},
    handler::ConnectHandler as _,
    layer::SocketIoLayer,
};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{Audience, Hub, Session};
use crate::auth::{AuthContext, Role, jwt::Claims};

/// How often every replica checks its sockets' users against the database.
pub const SESSION_CHECK: Duration = Duration::from_secs(5);

/// The room of every socket of one user.
fn user_room(id: Uuid) -> String {
    format!("user:{id}")
}

/// The room of sockets whose user may read incidents.
const INCIDENT_READERS: &str = "incident-readers";

/// What the gateway's handlers share.
#[derive(Debug, Clone)]
struct Gateway {
    /// Token checks, and the pool the users' sessions are read from.
    auth: Arc<AuthContext>,
    /// The events to forward and the sockets' sessions.
    hub: Hub,
    /// `websocket_connections_active`.
    connections: IntGauge,
}

/// The refusal sent as the connect error's `message`.
#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unauthorized")
    }
}

/// The token of the handshake: `auth.token`, else the `token` query parameter.
fn handshake_token(auth: Option<&serde_json::Value>, query: Option<&str>) -> Option<String> {
    let from_auth = auth
        .and_then(|a| a.get("token"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let token = from_auth.or_else(|| {
        query?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "token").then(|| v.to_owned())
        })
    })?;
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// A token's claims when it is a valid access token of an active user whose sessions were
/// not ended after it was issued; the user's roles with it.
async fn verify(auth: &AuthContext, token: &str) -> Option<(Claims, Vec<Role>)> {
    let (claims, user) = crate::auth::principal::claims_and_user(auth, token)
        .await
        .ok()?;
    let revoked = sessions_revoked_at(auth, claims.sub).await?;
    // `iat` has whole seconds: a token issued in the second of the revocation is refused too
    // (its client's reconnect a moment later carries a newer one).
    if revoked.is_some_and(|r| claims.iat <= r.timestamp()) {
        return None;
    }
    Some((claims, user.roles))
}

async fn sessions_revoked_at(auth: &AuthContext, user: Uuid) -> Option<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT sessions_revoked_at FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(&auth.db)
        .await
        .ok()
        .flatten()
}

fn expiry(claims: &Claims) -> DateTime<Utc> {
    Utc.timestamp_opt(claims.exp, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn reads_incidents(roles: &[Role]) -> bool {
    use crate::auth::RoleSet as _;
    roles
        .iter()
        .any(|r| crate::auth::IncidentReaders::ROLES.contains(r))
}

async fn authenticate(
    socket: SocketRef,
    State(gateway): State<Gateway>,
    TryData(auth): TryData<serde_json::Value>,
) -> Result<(), Unauthorized> {
    let token =
        handshake_token(auth.ok().as_ref(), socket.req_parts().uri.query()).ok_or(Unauthorized)?;
    let (claims, roles) = verify(&gateway.auth, &token).await.ok_or(Unauthorized)?;
    socket.join(user_room(claims.sub));
    if reads_incidents(&roles) {
        socket.join(INCIDENT_READERS);
    }
    gateway.hub.set_session(
        &socket.id.to_string(),
        Session {
            user_id: claims.sub,
            connected_at: Utc::now(),
            expires_at: expiry(&claims),
        },
    );
    tracing::debug!(socket = %socket.id, user = %claims.sub, "socket authenticated");
    Ok(())
}

async fn on_connect(socket: SocketRef, State(gateway): State<Gateway>) {
    gateway.connections.inc();
    tracing::info!(socket = %socket.id, "socket connected");
    socket.on_disconnect(async |s: SocketRef, State(gateway): State<Gateway>| {
        gateway.connections.dec();
        gateway.hub.remove_session(&s.id.to_string());
        tracing::info!(socket = %s.id, "socket disconnected");
    });
    socket.on("authenticate", reauthenticate);
    tokio::spawn(disconnect_at_expiry(socket, gateway.hub));
}

/// The `authenticate` event: a fresh access token of the same user extends the socket's life.
async fn reauthenticate(
    socket: SocketRef,
    State(gateway): State<Gateway>,
    Data(body): Data<serde_json::Value>,
    ack: AckSender,
) {
    let sid = socket.id.to_string();
    let token = handshake_token(Some(&body), None);
    let renewed = match (gateway.hub.session(&sid), token) {
        (Some(session), Some(token)) => verify(&gateway.auth, &token)
            .await
            .filter(|(claims, _)| claims.sub == session.user_id)
            .map(|(claims, _)| (session, expiry(&claims))),
        _ => None,
    };
    let answer = match renewed {
        Some((session, expires_at)) => {
            gateway.hub.set_session(
                &sid,
                Session {
                    expires_at: expires_at.max(session.expires_at),
                    ..session
                },
            );
            serde_json::json!({"ok": true, "expiresAt": aegis_common::time::rfc3339_millis(expires_at)})
        }
        None => serde_json::json!({"ok": false, "message": "Unauthorized"}),
    };
    let _ = ack.send(&answer);
}

async fn disconnect_at_expiry(socket: SocketRef, hub: Hub) {
    let sid = socket.id.to_string();
    loop {
        let Some(session) = hub.session(&sid) else {
            return;
        };
        let left = (session.expires_at - Utc::now())
            .to_std()
            .unwrap_or_default();
        if left.is_zero() {
            tracing::info!(socket = %sid, "access token expired: disconnecting the socket");
            hub.remove_session(&sid);
            let _ = socket.disconnect();
            return;
        }
        tokio::time::sleep(left).await;
    }
}

/// Disconnects the sockets of users who are gone, inactive or whose sessions ended after the
/// socket connected; moves sockets into or out of the incident readers as roles change.
async fn check_sessions(io: &SocketIo, gateway: &Gateway) {
    let sessions = gateway.hub.sessions();
    if sessions.is_empty() {
        return;
    }
    let mut ids: Vec<Uuid> = sessions.iter().map(|(_, s)| s.user_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // One statement for every connected user; when the database does not answer, the sockets
    // stay until it does.
    let Ok(states) = crate::db::users::session_states(&gateway.auth.db, &ids).await else {
        return;
    };
    let states: std::collections::HashMap<Uuid, crate::db::users::SessionState> =
        states.into_iter().map(|s| (s.id, s)).collect();
    for (sid, session) in sessions {
        let Some(socket) = sid.parse().ok().and_then(|s| io.get_socket(s)) else {
            gateway.hub.remove_session(&sid);
            continue;
        };
        let user = states.get(&session.user_id);
        let ended = user.is_none_or(|u| {
            !u.is_active
                || u.sessions_revoked_at
                    .is_some_and(|r| r > session.connected_at)
        });
        if ended {
            tracing::info!(socket = %sid, user = %session.user_id, "sessions ended: disconnecting the socket");
            gateway.hub.remove_session(&sid);
            let _ = socket.disconnect();
            continue;
        }
        let roles: Vec<Role> = user
            .into_iter()
            .flat_map(|u| u.roles.iter().filter_map(|r| Role::parse(r)))
            .collect();
        if reads_incidents(&roles) {
            socket.join(INCIDENT_READERS);
        } else {
            socket.leave(INCIDENT_READERS);
        }
    }
}

/// Builds the layer and starts forwarding `hub`'s events to the sockets; `connections` counts
/// the open sockets. Needs a Tokio runtime.
pub fn layer(auth: Arc<AuthContext>, hub: Hub, connections: IntGauge) -> SocketIoLayer {
    let gateway = Gateway {
        auth,
        hub,
        connections,
    };
    let (layer, io) = SocketIo::builder()
        .with_state(gateway.clone())
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    let mut events = gateway.hub.subscribe();
    let forward = io.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(envelope) => {
                    let to = match envelope.audience {
                        Audience::Everyone => forward.broadcast(),
                        Audience::IncidentReaders => forward.to(INCIDENT_READERS),
                    };
                    if let Err(e) = to.emit(envelope.event.as_str(), &envelope).await {
                        tracing::warn!(error = %e, event = %envelope.event, "socket broadcast failed");
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "socket broadcast lagged");
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    let mut ended = gateway.hub.subscribe_ended();
    let local = io.clone();
    let hub = gateway.hub.clone();
    tokio::spawn(async move {
        loop {
            match ended.recv().await {
                Ok(user_id) => {
                    for (sid, session) in hub.sessions() {
                        if session.user_id == user_id {
                            hub.remove_session(&sid);
                        }
                    }
                    if let Err(e) = local.to(user_room(user_id)).disconnect().await {
                        tracing::warn!(error = %e, "failed to disconnect an ended session's sockets");
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    });
    let checked = gateway;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SESSION_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            check_sessions(&io, &checked).await;
        }
    });
    layer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_token_comes_from_auth_then_the_query() {
        let auth = json!({"token": "Bearer abc"});
        assert_eq!(
            handshake_token(Some(&auth), Some("token=q")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            handshake_token(None, Some("EIO=4&transport=websocket&token=q")).as_deref(),
            Some("q")
        );
        assert_eq!(handshake_token(Some(&json!({})), Some("EIO=4")), None);
        assert_eq!(handshake_token(Some(&json!({"token": " "})), None), None);
    }
}
