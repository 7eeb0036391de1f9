//! The one shell of the three services: a [`Shell`] says how a service is built and wound
//! down, and [`Application`] binds, serves and drains it the same way for each.

use std::future::Future;

use super::Bound;

/// What makes a service of a [`Bound`] server: how it is built from its configuration, and
/// what it does once the server has stopped and every request has drained (stop background
/// jobs, flush queued writes). The implementing type holds what winding down needs.
pub trait Shell: Sized + Send + 'static {
    /// The state the handlers share; tests inspect it.
    type State: Send + 'static;
    /// The service's configuration.
    type Config;

    /// Connects, migrates when enabled, builds the router and binds the port.
    fn build(
        config: Self::Config,
    ) -> impl Future<Output = anyhow::Result<Application<Self>>> + Send;

    /// Runs after serving has stopped and requests have drained.
    fn wind_down(self) -> impl Future<Output = ()> + Send;
}

/// A bound, ready-to-run service: the one shell of the three services, so binding, serving,
/// draining and winding down work the same way in each.
#[derive(Debug)]
pub struct Application<S: Shell> {
    bound: Bound,
    state: S::State,
    shell: S,
}

impl<S: Shell> Application<S> {
    /// Puts together what [`Shell::build`] made.
    pub fn new(bound: Bound, state: S::State, shell: S) -> Self {
        Self {
            bound,
            state,
            shell,
        }
    }

    /// Builds the service from `config` (see [`Shell::build`]).
    ///
    /// # Errors
    /// Whatever stopped the service from starting: the database, a migration, the port.
    pub async fn build(config: S::Config) -> anyhow::Result<Self> {
        S::build(config).await
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.bound.local_addr()
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.bound.port()
    }

    /// The shared state.
    #[must_use]
    pub fn state(&self) -> &S::State {
        &self.state
    }

    /// Serves until `shutdown` resolves, drains the requests in flight, then winds down.
    /// The state is dropped first, so the handlers hold the last references to it.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            bound,
            state,
            shell,
        } = self;
        drop(state);
        let served = bound.run_until(shutdown).await;
        shell.wind_down().await;
        served
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(crate::server::shutdown_signal()).await
    }
}
