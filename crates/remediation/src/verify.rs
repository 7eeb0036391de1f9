//! Whether an action worked: the rule the loop applies when an incident's verification is due.

use aegis_contracts::DeploymentStatus;

/// What the loop saw of the deployment when verification was due.
#[derive(Debug, Clone, Copy)]
pub enum Observed<'a> {
    /// The deployment as the executor read it.
    Deployment(&'a DeploymentStatus),
    /// The deployment no longer exists.
    Gone,
    /// It could not be read; the text says why.
    Unreadable(&'a str),
}

/// The outcome of verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every replica is ready and no signal with the same fingerprint came after the action.
    Recovered,
    /// Anything else; the text says why, for the alert and the timeline.
    NotRecovered(String),
}

/// Recovered when the deployment is fully ready and `repeats` (signals with the incident's
/// fingerprint since the action) is zero. An unreadable or vanished deployment is never
/// taken as recovered: verification escalates rather than guess.
#[must_use]
pub fn verdict(observed: Observed<'_>, repeats: i64) -> Verdict {
    match observed {
        Observed::Deployment(d) if d.ready_replicas == d.replicas && repeats == 0 => {
            Verdict::Recovered
        }
        Observed::Deployment(d) if repeats > 0 => Verdict::NotRecovered(format!(
            "not recovered: {repeats} more signal(s) with the same fingerprint after the action ({}/{} replicas ready)",
            d.ready_replicas, d.replicas
        )),
        Observed::Deployment(d) => Verdict::NotRecovered(format!(
            "not recovered: {}/{} replicas ready after the verification delay",
            d.ready_replicas, d.replicas
        )),
        Observed::Gone => {
            Verdict::NotRecovered("not recovered: the deployment no longer exists".to_owned())
        }
        Observed::Unreadable(why) => {
            Verdict::NotRecovered(format!("could not verify the outcome: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i32, ready: i32) -> DeploymentStatus {
        DeploymentStatus {
            namespace: "production".into(),
            deployment_name: "api".into(),
            replicas,
            ready_replicas: ready,
            updated_replicas: ready,
            available_replicas: ready,
            revision: Some(2),
            paused: false,
        }
    }

    #[test]
    fn only_a_fully_ready_deployment_without_repeats_has_recovered() {
        let ready = deployment(3, 3);
        assert_eq!(verdict(Observed::Deployment(&ready), 0), Verdict::Recovered);
        assert_eq!(
            verdict(Observed::Deployment(&ready), 2),
            Verdict::NotRecovered(
                "not recovered: 2 more signal(s) with the same fingerprint after the action (3/3 replicas ready)".into()
            )
        );
        let short = deployment(3, 2);
        assert_eq!(
            verdict(Observed::Deployment(&short), 0),
            Verdict::NotRecovered(
                "not recovered: 2/3 replicas ready after the verification delay".into()
            )
        );
        // Scaled to zero and zero ready counts as ready: nothing is left failing.
        assert_eq!(
            verdict(Observed::Deployment(&deployment(0, 0)), 0),
            Verdict::Recovered
        );
    }

    #[test]
    fn a_missing_or_unreadable_deployment_is_never_recovered() {
        assert!(matches!(
            verdict(Observed::Gone, 0),
            Verdict::NotRecovered(_)
        ));
        assert_eq!(
            verdict(Observed::Unreadable("timeout"), 0),
            Verdict::NotRecovered("could not verify the outcome: timeout".into())
        );
    }
}
