//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Aegis from a terminal: incidents, approvals, policy what-ifs and the audit chain.
#[derive(Debug, Parser)]
#[command(
    name = "aegisctl",
    version,
    after_help = "Exit codes: 0 done (or yes), 1 the answer is no (chain broken, request denied), \
                  2 bad usage or a local problem (an input or token file), 3 not logged in or \
                  refused credentials, 4 the role does not allow it, 5 not found, 6 refused as \
                  asked (invalid input or conflict), 7 the backend failed, is rate limiting, or \
                  could not be reached."
)]
pub struct Cli {
    /// The backend's base URL (default: the one of the last login, else http://127.0.0.1:3000;
    /// `login` itself defaults to http://127.0.0.1:3000).
    #[arg(long, global = true, env = "AEGIS_SERVER")]
    pub server: Option<String>,
    /// The token file (default: $XDG_CONFIG_HOME/aegis/credentials.json or
    /// ~/.config/aegis/credentials.json).
    #[arg(long, global = true, env = "AEGISCTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output for people, or JSON for scripts.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and timelines.
    Human,
    /// The backend's JSON (one object per line for `incidents follow`).
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and keep the tokens in a file only you can read.
    Login(Login),
    /// Forget the stored tokens.
    Logout {
        /// Also end every session of this user on the server (all refresh tokens revoked).
        #[arg(long)]
        everywhere: bool,
    },
    /// Print the stored access token (e.g. `export TOKEN=$(aegisctl token)` for curl).
    Token,
    /// Who is logged in, where, and with which roles.
    Whoami,
    /// Incidents and their timelines.
    #[command(subcommand)]
    Incidents(Incidents),
    /// Approve an incident's planned action (admin, operator).
    Approve {
        /// The incident's id.
        id: String,
        /// Why (required with --override-guardrails).
        #[arg(long)]
        reason: Option<String>,
        /// Act even where a guardrail (cooldown, hourly cap) holds; recorded with the reason.
        #[arg(long, requires = "reason")]
        override_guardrails: bool,
    },
    /// Reject an incident: close it without acting (admin, operator).
    Reject {
        /// The incident's id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ask the policy engine.
    #[command(subcommand)]
    Policy(Policy),
    /// The executor's audit trail.
    #[command(subcommand)]
    Audit(Audit),
}

/// `login`.
#[derive(Debug, Args)]
pub struct Login {
    /// The account's email.
    #[arg(long, env = "AEGIS_EMAIL")]
    pub email: String,
    /// Read the password from standard input (its first line) instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `incidents …`.
#[derive(Debug, Subcommand)]
pub enum Incidents {
    /// List incidents, newest first.
    List(Filter),
    /// Show one incident with its whole timeline.
    Show {
        /// The incident's id.
        id: String,
    },
    /// Print each timeline step as it happens, until Ctrl-C: the steps of the 100 most
    /// recently opened incidents that match the filters at each poll.
    Follow {
        /// Only incidents in these statuses (comma-separated).
        #[arg(long)]
        status: Option<String>,
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=300))]
        interval: u64,
    },
}

/// Filters of `incidents list` and `incidents follow`.
#[derive(Debug, Clone, Args)]
pub struct Filter {
    /// Only these statuses (comma-separated, e.g. `open,awaiting_approval`).
    #[arg(long)]
    pub status: Option<String>,
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// At most this many (1 to 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub limit: u16,
}

/// `policy …`.
#[derive(Debug, Subcommand)]
pub enum Policy {
    /// Evaluate a request against the stored, active policies.
    Evaluate {
        #[command(flatten)]
        request: PolicyRequest,
        /// Also show how each policy judged the request.
        #[arg(long)]
        explain: bool,
    },
    /// Evaluate a request against draft policies, without saving or auditing anything
    /// (admin, auditor).
    DryRun {
        /// A JSON file holding the draft policies (an array, as `POST /policy` takes them),
        /// or `-` for standard input.
        #[arg(long)]
        policies: PathBuf,
        #[command(flatten)]
        request: PolicyRequest,
    },
}

/// The request to evaluate: from flags, or whole from a JSON file.
#[derive(Debug, Clone, Args)]
pub struct PolicyRequest {
    /// The whole request as JSON (`{"type", "action", "resource", "context"}`); `-` for
    /// standard input. Replaces the flags below.
    #[arg(long, conflicts_with_all = ["policy_type", "action", "resource", "role", "meta"])]
    pub request: Option<PathBuf>,
    /// The policy type, e.g. `self_healing`.
    #[arg(long = "type", default_value = "self_healing")]
    pub policy_type: String,
    /// The action, e.g. `scale_up`.
    #[arg(long, required_unless_present = "request")]
    pub action: Option<String>,
    /// The resource, e.g. `service:api`.
    #[arg(long, required_unless_present = "request")]
    pub resource: Option<String>,
    /// Context: the role.
    #[arg(long)]
    pub role: Option<String>,
    /// Context metadata, repeatable: `--meta cpuUsage=95 --meta namespace=production`. A value
    /// that parses as JSON (a number, `true`) is sent as such, anything else as a string.
    #[arg(long, value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
}

/// `audit …`.
#[derive(Debug, Subcommand)]
pub enum Audit {
    /// Check the executor's hash chain (admin, auditor); exit 1 where it breaks.
    Verify,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn override_needs_a_reason() {
        let err =
            Cli::try_parse_from(["aegisctl", "approve", "x", "--override-guardrails"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            Cli::try_parse_from([
                "aegisctl",
                "approve",
                "x",
                "--override-guardrails",
                "--reason",
                "ok"
            ])
            .is_ok()
        );
    }

    #[test]
    fn a_policy_request_needs_an_action_and_resource_or_a_file() {
        assert!(Cli::try_parse_from(["aegisctl", "policy", "evaluate", "--action", "a"]).is_err());
        assert!(
            Cli::try_parse_from(["aegisctl", "policy", "evaluate", "--request", "r.json"]).is_ok()
        );
        assert!(
            Cli::try_parse_from([
                "aegisctl",
                "policy",
                "evaluate",
                "--request",
                "r.json",
                "--action",
                "a"
            ])
            .is_err()
        );
    }
}
