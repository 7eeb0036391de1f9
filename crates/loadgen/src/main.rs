//! `aegis-loadgen`: the Rust half of the HTTP load harness driven by `bench/run.sh`.
//!
//! It starts the bench stack (kube-sim and the three services from release binaries, rate limits
//! raised, an allow policy created, the anomaly forest trained) and writes its URLs, pids and
//! secrets as JSON; it wraps `wrk` runs to read the services' CPU time and memory from `/proc`;
//! it is the load generator for the two scenarios `wrk` cannot drive (the executor's signed
//! execute, where every request needs a fresh v2 HMAC signature, and the whole remediation loop);
//! it runs the soak (a paced mixed load with RSS sampled throughout); it times the Kubernetes
//! watcher from a pod's state change to the opened incident; and it prints the summary table. It is a benchmarking tool, not a test, and never runs in CI.

mod args;
mod generate;
mod procfs;
mod report;
mod soak;
mod stack;
mod watch_latency;

use std::process::ExitCode;

const USAGE: &str = "usage: aegis-loadgen <command> [--flag value ...]\n\
  stack    --state FILE --run-dir DIR [--bin-dir DIR] [--deployments N] [--verify-delay S] [--watcher 1]\n\
           start the bench stack, write FILE, run until SIGTERM/SIGINT, then stop it\n\
  wrk      --state FILE --scenario NAME --conc N --duration S --service NAME --out FILE -- wrk ARGS...\n\
           run wrk (its Lua script writes $BENCH_WRK_OUT) and measure the services from /proc\n\
  execute  --state FILE --conc N --duration S --out FILE\n\
           signed dry-run scale_deployment calls to the executor, a fresh v2 signature each\n\
  loop     --state FILE --conc N --duration S --out FILE\n\
           remediation signals to the backend; the loop latency from its /metrics histogram\n\
  soak     --state FILE --duration S --out FILE [--evaluate-rate R] [--anomaly-rate R]\n\
           [--execute-rate R] [--signal-rate R] [--sample-every S]\n\
           paced mixed load; passes with no failed request and flat RSS in the second half\n\
  watch-latency --state FILE --out FILE [--samples N]\n\
           crash one pod per bench deployment; time until the watcher's incident is opened\n\
  report   --dir DIR\n\
           print the summary table of a results directory (fractions of the ping ceiling)";

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "stack" => stack::run(rest).await,
        "wrk" => generate::run_wrk(rest).await,
        "execute" => generate::run_execute(rest).await,
        "loop" => generate::run_loop(rest).await,
        "soak" => soak::run(rest).await,
        "watch-latency" => watch_latency::run(rest).await,
        "report" => report::run(rest),
        "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("aegis-loadgen: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aegis-loadgen {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
