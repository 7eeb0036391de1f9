//! The Socket.IO v4 gateway at `/socket.io/` (backend.md §6.3): only clients presenting a
//! valid access token (`auth.token` in the handshake, else `?token=`) of an active user may
//! connect; others get a connect error `{"message": "Unauthorized"}`. Every [`super::Hub`]
//! event is broadcast to every connected client as one argument `{event, data}`. No
//! client→server events are handled.

use socketioxide::{
    SocketIo,
    extract::{SocketRef, State, TryData},
    handler::ConnectHandler as _,
    layer::SocketIoLayer,
};
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

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

async fn authenticate(
    socket: SocketRef,
    State(state): State<AppState>,
    TryData(auth): TryData<serde_json::Value>,
) -> Result<(), Unauthorized> {
    let token =
        handshake_token(auth.ok().as_ref(), socket.req_parts().uri.query()).ok_or(Unauthorized)?;
    let user = crate::auth::user_from_access_token(&state, &token)
        .await
        .map_err(|_| Unauthorized)?;
    tracing::debug!(socket = %socket.id, user = %user.id, "socket authenticated");
    Ok(())
}

async fn on_connect(socket: SocketRef, State(state): State<AppState>) {
    state.backend_metrics.websocket_connections.inc();
    tracing::info!(socket = %socket.id, "socket connected");
    socket.on_disconnect(async |s: SocketRef, State(state): State<AppState>| {
        state.backend_metrics.websocket_connections.dec();
        tracing::info!(socket = %s.id, "socket disconnected");
    });
}

/// Builds the layer and starts forwarding hub events to every socket. Needs a Tokio runtime.
pub fn layer(state: &AppState) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder().with_state(state.clone()).build_layer();
    io.ns("/", on_connect.with(authenticate));
    let mut events = state.realtime.subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(envelope) => {
                    if let Err(e) = io.emit(envelope.event.as_str(), &envelope).await {
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
