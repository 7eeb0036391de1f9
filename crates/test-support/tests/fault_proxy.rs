#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The fault proxy forwards, cuts and restores real traffic (against the machine's Redis).

use std::time::Duration;

use aegis_test_support::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn ping(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn forwards_cuts_and_restores() {
    let redis = "127.0.0.1:6379".parse().unwrap();
    let proxy = FaultProxy::start(redis).await.unwrap();
    assert_eq!(ping(proxy.addr()).await.unwrap(), "+PONG\r\n");

    proxy.cut();
    let cut = ping(proxy.addr()).await;
    assert!(cut.as_ref().map_or(true, String::is_empty), "{cut:?}");

    proxy.restore();
    assert_eq!(ping(proxy.addr()).await.unwrap(), "+PONG\r\n");

    proxy.stall();
    assert!(
        ping(proxy.addr()).await.is_err(),
        "stalled proxy must not answer"
    );
}
