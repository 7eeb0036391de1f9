//! What the three services share around their routers, in one place so they cannot drift: the
//! layers (`/metrics`, the body limit, request metrics and the error envelope), CORS, the port
//! from start-up to serving, the application shell and the binary's `main`.

mod binary;
mod cors;
mod layers;
mod port;
mod shell;

pub use binary::{BoxError, ServiceBinary, error_chain, run_binary};
pub use cors::{CorsError, cors_layer};
pub use layers::{
    documented_with_extra_routes, documented_with_service_layers, with_service_layers,
};
pub use port::{Bound, Starting};
pub use shell::{Application, Shell};
