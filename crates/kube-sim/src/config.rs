//! Start-up configuration: [`SimConfig`] for the library, and command-line/environment parsing
//! for the binary.
//!
//! | flag | variable | default | meaning |
//! |---|---|---|---|
//! | `--bind ADDR` | `KUBE_SIM_BIND` | `127.0.0.1` | address to listen on |
//! | `--port N` | `KUBE_SIM_PORT` | `6443` (binary), `0` (library) | port; 0 picks a free one |
//! | `--token T` | `KUBE_SIM_TOKEN` | random | bearer token clients must send |
//! | `--read-only-token T` | `KUBE_SIM_READ_ONLY_TOKEN` | none | a second token that may only read (get, list, watch) and write leases; anything else answers 403 |
//! | `--seed FILE` | `KUBE_SIM_SEED` | none | YAML with initial namespaces and deployments |
//! | `--kubeconfig-out FILE` | `KUBE_SIM_KUBECONFIG_OUT` | none (printed) | where to write the kubeconfig |
//! | `--tls` | `KUBE_SIM_TLS=true` | off | serve HTTPS with a generated self-signed certificate |
//! | `--faults JSON\|@FILE` | `KUBE_SIM_FAULTS` | none | fault rules (a JSON array of [`FaultRule`]) |
//! | `--baseline-cpu PCT` | `KUBE_SIM_BASELINE_CPU` | `5` | CPU percent of pods without an override |
//! | `--baseline-memory PCT` | `KUBE_SIM_BASELINE_MEMORY` | `20` | memory percent likewise |
//! | `--kubelet-period-ms N` | `KUBE_SIM_KUBELET_PERIOD_MS` | `1000` | how often failing containers restart, pulls are retried and probes fail again (1 to 60000) |

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::faults::FaultRule;
use crate::seed::{Seed, SeedError};

/// Configuration of one simulated cluster.
#[derive(Clone)]
pub struct SimConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// Port; 0 picks a free port (tests).
    pub port: u16,
    /// Bearer token; a random one when `None`.
    pub token: Option<String>,
    /// A second bearer token that may only read (get, list and watch) and write leases, as a
    /// watcher's Role allows. Any other request with it answers 403, as a real API server
    /// answers a verb the Role does not grant.
    pub read_only_token: Option<String>,
    /// Initial state.
    pub seed: Option<Seed>,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// Serve HTTPS with a generated self-signed certificate.
    pub tls: bool,
    /// CPU percent reported for pods without an override.
    pub baseline_cpu: f64,
    /// Memory percent reported for pods without an override.
    pub baseline_memory: f64,
    /// One kubelet period: how often a crash-looping container restarts, a failed pull is
    /// retried and a failing probe fails again (see [`crate::kubelet`]).
    pub kubelet_period: std::time::Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            token: None,
            read_only_token: None,
            seed: None,
            faults: Vec::new(),
            tls: false,
            baseline_cpu: 5.0,
            baseline_memory: 20.0,
            kubelet_period: std::time::Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field(
                "read_only_token",
                &self.read_only_token.as_ref().map(|_| "[redacted]"),
            )
            .field("seed", &self.seed)
            .field("faults", &self.faults)
            .field("tls", &self.tls)
            .field("baseline_cpu", &self.baseline_cpu)
            .field("baseline_memory", &self.baseline_memory)
            .field("kubelet_period", &self.kubelet_period)
            .finish()
    }
}

impl SimConfig {
    /// Uses this seed.
    #[must_use]
    pub fn with_seed(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Uses this token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Also accepts `token` for reading only.
    #[must_use]
    pub fn with_read_only_token(mut self, token: impl Into<String>) -> Self {
        self.read_only_token = Some(token.into());
        self
    }

    /// Sets the kubelet period.
    #[must_use]
    pub fn with_kubelet_period(mut self, period: std::time::Duration) -> Self {
        self.kubelet_period = period;
        self
    }

    /// Serves HTTPS.
    #[must_use]
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
}

/// Errors in the command line or environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag kube-sim does not know.
    #[error("unknown argument {0:?} (try --help)")]
    UnknownArgument(String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("invalid value for {name}: {value:?}: {reason}")]
    InvalidValue {
        /// Flag or variable.
        name: String,
        /// The value given.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// The seed file is unreadable or malformed.
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// What the binary should do.
#[derive(Debug)]
pub enum Command {
    /// Print usage.
    Help,
    /// Run the simulator.
    Run(CliOptions),
}

/// The binary's options: the config plus where to write the kubeconfig.
#[derive(Debug)]
pub struct CliOptions {
    /// Simulator configuration.
    pub config: SimConfig,
    /// Write the kubeconfig here (else print it to stdout).
    pub kubeconfig_out: Option<PathBuf>,
}

/// Usage text for `--help`.
pub const USAGE: &str = "kube-sim: a small Kubernetes API server for Aegis tests and the local demo (not a real cluster)

USAGE: kube-sim [--bind ADDR] [--port N] [--token T] [--read-only-token T] [--seed FILE]
                [--kubeconfig-out FILE] [--tls] [--faults JSON|@FILE] [--baseline-cpu PCT]
                [--baseline-memory PCT] [--kubelet-period-ms N]

Every flag has an environment variable: KUBE_SIM_BIND, KUBE_SIM_PORT (default 6443), KUBE_SIM_TOKEN,
KUBE_SIM_READ_ONLY_TOKEN, KUBE_SIM_SEED, KUBE_SIM_KUBECONFIG_OUT, KUBE_SIM_TLS, KUBE_SIM_FAULTS,
KUBE_SIM_BASELINE_CPU, KUBE_SIM_BASELINE_MEMORY, KUBE_SIM_KUBELET_PERIOD_MS. Flags win over
variables.

Images behave by their tag: :crash crash-loops, :oom is OOM-killed, :missing never pulls,
:unready never passes readiness; POST /_sim/images {\"image\": ..., \"behaviour\": ...} sets any image's.

kubectl sends the token only over HTTPS: use --tls when kubectl is the client.

Admin (bearer token required): GET/POST/PUT/DELETE /_sim/faults, POST/DELETE /_sim/metrics,
POST /_sim/crashloop, POST /_sim/logs, GET/POST /_sim/images, GET/DELETE /_sim/requests.
Open: /metrics, /healthz, /readyz, /livez.";

fn invalid(name: &str, value: &str, reason: impl ToString) -> ConfigError {
    ConfigError::InvalidValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

fn parse_faults(name: &str, value: &str) -> Result<Vec<FaultRule>, ConfigError> {
    let text = match value.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| invalid(name, value, e))?,
        None => value.to_owned(),
    };
    let rules: Vec<FaultRule> = serde_json::from_str(&text).map_err(|e| invalid(name, value, e))?;
    for rule in &rules {
        rule.validate().map_err(|e| invalid(name, value, e))?;
    }
    Ok(rules)
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

/// Parses the binary's arguments (without the program name) over the environment (read through
/// `env`, so tests can pass a map).
pub fn parse_command(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut values: std::collections::BTreeMap<&'static str, (String, String)> =
        std::collections::BTreeMap::new();
    const FLAGS: [(&str, &str); 11] = [
        ("--bind", "KUBE_SIM_BIND"),
        ("--port", "KUBE_SIM_PORT"),
        ("--token", "KUBE_SIM_TOKEN"),
        ("--read-only-token", "KUBE_SIM_READ_ONLY_TOKEN"),
        ("--seed", "KUBE_SIM_SEED"),
        ("--kubeconfig-out", "KUBE_SIM_KUBECONFIG_OUT"),
        ("--tls", "KUBE_SIM_TLS"),
        ("--faults", "KUBE_SIM_FAULTS"),
        ("--baseline-cpu", "KUBE_SIM_BASELINE_CPU"),
        ("--baseline-memory", "KUBE_SIM_BASELINE_MEMORY"),
        ("--kubelet-period-ms", "KUBE_SIM_KUBELET_PERIOD_MS"),
    ];
    for (flag, var) in FLAGS {
        if let Some(v) = env(var) {
            values.insert(flag, (var.to_owned(), v));
        }
    }
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let Some((known, _)) = FLAGS.iter().find(|(f, _)| *f == flag) else {
            return Err(ConfigError::UnknownArgument(arg));
        };
        let value = if *known == "--tls" {
            inline.unwrap_or_else(|| "true".to_owned())
        } else {
            match inline {
                Some(v) => v,
                None => args
                    .next()
                    .ok_or_else(|| ConfigError::MissingValue(flag.clone()))?,
            }
        };
        values.insert(known, (flag, value));
    }

    let mut config = SimConfig {
        port: 6443,
        ..SimConfig::default()
    };
    let mut kubeconfig_out = None;
    for (flag, (name, value)) in &values {
        match *flag {
            "--bind" => config.bind = value.parse().map_err(|e| invalid(name, value, e))?,
            "--port" => config.port = value.parse().map_err(|e| invalid(name, value, e))?,
            "--token" => {
                if value.trim().is_empty() {
                    return Err(invalid(name, value, "the token must not be empty"));
                }
                config.token = Some(value.clone());
            }
            "--read-only-token" => {
                if value.trim().is_empty() {
                    return Err(invalid(name, value, "the token must not be empty"));
                }
                config.read_only_token = Some(value.clone());
            }
            "--seed" => config.seed = Some(Seed::from_file(std::path::Path::new(value))?),
            "--kubeconfig-out" => kubeconfig_out = Some(PathBuf::from(value)),
            "--tls" => config.tls = parse_bool(name, value)?,
            "--faults" => config.faults = parse_faults(name, value)?,
            "--baseline-cpu" => {
                config.baseline_cpu = value.parse().map_err(|e| invalid(name, value, e))?;
            }
            "--baseline-memory" => {
                config.baseline_memory = value.parse().map_err(|e| invalid(name, value, e))?;
            }
            "--kubelet-period-ms" => {
                let ms: u64 = value.parse().map_err(|e| invalid(name, value, e))?;
                if !(1..=60_000).contains(&ms) {
                    return Err(invalid(name, value, "must be between 1 and 60000"));
                }
                config.kubelet_period = std::time::Duration::from_millis(ms);
            }
            _ => {}
        }
    }
    Ok(Command::Run(CliOptions {
        config,
        kubeconfig_out,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<CliOptions, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let command = parse_command(args.iter().map(|s| (*s).to_owned()), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })?;
        match command {
            Command::Run(options) => Ok(options),
            Command::Help => Err(ConfigError::UnknownArgument("help".into())),
        }
    }

    #[test]
    fn flags_win_over_environment_variables() {
        let options = run(
            &["--port", "7000", "--tls", "--token=abc"],
            &[("KUBE_SIM_PORT", "6000"), ("KUBE_SIM_BIND", "0.0.0.0")],
        )
        .unwrap();
        assert_eq!(options.config.port, 7000);
        assert!(options.config.tls);
        assert_eq!(options.config.token.as_deref(), Some("abc"));
        assert_eq!(options.config.bind.to_string(), "0.0.0.0");
    }

    #[test]
    fn the_read_only_token_comes_from_its_flag_or_variable_and_is_never_empty_or_printed() {
        let options = run(&[], &[("KUBE_SIM_READ_ONLY_TOKEN", "watcher")]).unwrap();
        assert_eq!(options.config.read_only_token.as_deref(), Some("watcher"));
        assert!(!format!("{:?}", options.config).contains("watcher"));
        let options = run(&["--read-only-token=reader"], &[]).unwrap();
        assert_eq!(options.config.read_only_token.as_deref(), Some("reader"));
        let err = run(&["--read-only-token", " "], &[]).unwrap_err();
        assert!(err.to_string().contains("--read-only-token"), "{err}");
        assert_eq!(run(&[], &[]).unwrap().config.read_only_token, None);
    }

    #[test]
    fn the_kubelet_period_is_a_bounded_number_of_milliseconds() {
        let options = run(&["--kubelet-period-ms", "250"], &[]).unwrap();
        assert_eq!(options.config.kubelet_period.as_millis(), 250);
        let options = run(&[], &[("KUBE_SIM_KUBELET_PERIOD_MS", "2000")]).unwrap();
        assert_eq!(options.config.kubelet_period.as_millis(), 2000);
        assert_eq!(
            run(&[], &[]).unwrap().config.kubelet_period.as_millis(),
            1000
        );
        for bad in ["0", "60001", "soon"] {
            let err = run(&["--kubelet-period-ms", bad], &[]).unwrap_err();
            assert!(err.to_string().contains("--kubelet-period-ms"), "{err}");
        }
    }

    #[test]
    fn faults_parse_from_json_and_bad_values_are_named() {
        let options = run(
            &["--faults", r#"[{"pathPrefix":"/api","status":503}]"#],
            &[],
        )
        .unwrap();
        assert_eq!(options.config.faults[0].status, Some(503));
        let err = run(&["--port", "x"], &[]).unwrap_err();
        assert!(err.to_string().contains("--port"));
        assert!(run(&["--bogus"], &[]).is_err());
    }
}
