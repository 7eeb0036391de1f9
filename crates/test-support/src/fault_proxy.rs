//! A TCP proxy that can cut, stall or delay traffic to a real server, so outage tests never touch
//! the machine's own PostgreSQL or Redis.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    task::{AbortHandle, JoinHandle},
};

const PASS: u8 = 0;
const CUT: u8 = 1;
const STALL: u8 = 2;

#[derive(Debug, Default)]
struct State {
    mode: AtomicU8,
    delay_ms: AtomicU64,
    conns: Mutex<Vec<AbortHandle>>,
}

/// A running proxy from [`FaultProxy::addr`] to a target.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let st = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mode = st.mode.load(Ordering::SeqCst);
                if mode == CUT {
                    drop(inbound);
                    continue;
                }
                let st2 = st.clone();
                let task = tokio::spawn(async move {
                    if st2.mode.load(Ordering::SeqCst) == STALL {
                        // Accept, then never answer: the client's timeouts must fire.
                        std::future::pending::<()>().await;
                        drop(inbound);
                        return;
                    }
                    let delay = st2.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    let _ = copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                if let Ok(mut conns) = st.conns.lock() {
                    conns.retain(|h| !h.is_finished());
                    conns.push(task.abort_handle());
                }
            }
        });
        Ok(Self {
            addr,
            state,
            accept,
        })
    }

    /// The proxy's address; point the client here.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones until [`FaultProxy::restore`].
    pub fn cut(&self) {
        self.state.mode.store(CUT, Ordering::SeqCst);
        self.drop_connections();
    }

    /// Accepts new connections but never forwards them (a hung server).
    pub fn stall(&self) {
        self.state.mode.store(STALL, Ordering::SeqCst);
        self.drop_connections();
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.state.mode.store(PASS, Ordering::SeqCst);
    }

    /// Delays the start of each new connection.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    fn drop_connections(&self) {
        if let Ok(mut conns) = self.state.conns.lock() {
            for c in conns.drain(..) {
                c.abort();
            }
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}
