//! Who is calling from where: the client IP (socket peer, or the right-most untrusted
//! `X-Forwarded-For` hop when the peer is a trusted proxy) and the User-Agent.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};
use ipnet::IpNet;

use super::AuthContext;

/// Client address and User-Agent; extracting never fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP as used for rate limits and audit rows.
    pub ip: IpAddr,
    /// `User-Agent`, if sent.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The IP as text.
    #[must_use]
    pub fn ip_string(&self) -> String {
        self.ip.to_string()
    }
}

/// The client IP given the socket peer, the headers and the trusted proxies.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    // Right to left: the first hop that is not one of our proxies is the client; if every hop
    // is trusted, the left-most one is the best we know.
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or_else(|| hops.first())
        .copied()
        .unwrap_or(peer)
}

impl<St> FromRequestParts<St> for ClientInfo
where
    Arc<AuthContext>: FromRef<St>,
    St: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        if let Some(info) = parts.extensions.get::<ClientInfo>() {
            return Ok(info.clone());
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let auth = Arc::<AuthContext>::from_ref(state);
        let info = ClientInfo {
            ip: client_ip(peer, &parts.headers, &auth.config.trust_proxy),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        parts.extensions.insert(info.clone());
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn peer_is_used_unless_it_is_a_trusted_proxy() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = headers("1.2.3.4");
        assert_eq!(client_ip(peer, &h, &[]), peer);
        let other: Vec<IpNet> = vec!["192.168.0.0/16".parse().unwrap()];
        assert_eq!(client_ip(peer, &h, &other), peer);
    }

    #[test]
    fn right_most_untrusted_hop_wins_over_spoofed_left_entries() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let h = headers("6.6.6.6, 1.2.3.4, 10.1.1.1");
        assert_eq!(
            client_ip(peer, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), peer);
    }
}
