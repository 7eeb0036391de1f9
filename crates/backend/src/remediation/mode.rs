//! The kill switch as the loop sees it. The global mode and a namespace's own are read from
//! the database before every decision and every approval, so a change made through any
//! replica applies everywhere at the next decision, with nothing to restart.
//!
//! A namespace's own mode can only make the global one stricter: setting the global mode to
//! `off` stops every namespace at once, whatever they say.

use std::time::Duration;

use aegis_policy::RemediationMode;

use super::remediator::Remediator;
use crate::db::modes::{self, ModeSetting};

/// How often each replica refreshes its mode gauges from the database.
const GAUGE_PERIOD: Duration = Duration::from_secs(5);

/// The modes, strictest first.
const MODES: [RemediationMode; 4] = [
    RemediationMode::Off,
    RemediationMode::DryRun,
    RemediationMode::Approval,
    RemediationMode::Auto,
];

/// The mode in force for one namespace, and which setting made it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeNow {
    /// The stricter of the global mode and the namespace's own.
    pub mode: RemediationMode,
    /// Which setting decided, who set it and why, in one sentence.
    pub reason: String,
}

/// The mode in force for `namespace`: the stored global mode (`initial` until one is
/// stored), made stricter by the namespace's own.
pub async fn current(state: &Remediator, namespace: &str) -> Result<ModeNow, sqlx::Error> {
    let (global, own) = modes::for_namespace(&state.db, namespace).await?;
    Ok(in_force(state.config.mode, global.as_ref(), own.as_ref()))
}

fn describe(what: &str, setting: Option<&ModeSetting>, mode: RemediationMode) -> String {
    let mut text = format!("{what} is {}", mode.as_str());
    if let Some(s) = setting {
        text.push_str(&format!(" (set by {}", s.updated_by));
        if let Some(reason) = &s.reason {
            text.push_str(&format!(": {reason}"));
        }
        text.push(')');
    }
    text
}

/// The rule of [`current`], without I/O.
#[must_use]
pub fn in_force(
    initial: RemediationMode,
    global: Option<&ModeSetting>,
    own: Option<&ModeSetting>,
) -> ModeNow {
    let global_mode = global.map_or(initial, |s| s.mode);
    match own {
        Some(own) if own.mode.stricter(global_mode) == own.mode && own.mode != global_mode => {
            ModeNow {
                mode: own.mode,
                reason: describe(
                    &format!("the remediation mode of namespace {}", own.scope),
                    Some(own),
                    own.mode,
                ),
            }
        }
        _ => ModeNow {
            mode: global_mode,
            reason: describe("the global remediation mode", global, global_mode),
        },
    }
}

/// Sets the mode gauges from the stored settings.
pub fn export(state: &Remediator, settings: &[ModeSetting]) {
    let global = settings
        .iter()
        .find(|s| s.scope == modes::GLOBAL)
        .map_or(state.config.mode, |s| s.mode);
    for mode in MODES {
        let metrics = &state.backend_metrics;
        metrics
            .remediation_mode
            .with_label_values(&[mode.as_str()])
            .set(i64::from(mode == global));
        let overrides = settings
            .iter()
            .filter(|s| s.scope != modes::GLOBAL && s.mode == mode)
            .count();
        metrics
            .remediation_mode_overrides
            .with_label_values(&[mode.as_str()])
            .set(i64::try_from(overrides).unwrap_or(i64::MAX));
    }
}

/// Keeps this replica's mode gauges current, whichever replica changed the mode.
pub fn spawn_export(state: &Remediator) {
    let st = state.clone();
    state.tasks.spawn(async move {
        loop {
            match modes::all(&st.db).await {
                Ok(settings) => export(&st, &settings),
                Err(e) => tracing::warn!(error = %e, "could not read the remediation modes"),
            }
            tokio::select! {
                () = st.stop.cancelled() => break,
                () = tokio::time::sleep(GAUGE_PERIOD) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn setting(scope: &str, mode: RemediationMode) -> ModeSetting {
        ModeSetting {
            scope: scope.into(),
            mode,
            reason: Some("maintenance".into()),
            updated_by: "oncall@example.com".into(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_namespace_can_only_make_the_global_mode_stricter() {
        use RemediationMode::*;
        let global = setting("*", Approval);
        let off = setting("shop", Off);
        let auto = setting("shop", Auto);
        let now = in_force(Auto, Some(&global), Some(&off));
        assert_eq!(now.mode, Off);
        assert_eq!(
            now.reason,
            "the remediation mode of namespace shop is off (set by oncall@example.com: maintenance)"
        );
        let now = in_force(Auto, Some(&global), Some(&auto));
        assert_eq!(now.mode, Approval);
        assert!(
            now.reason
                .starts_with("the global remediation mode is approval"),
            "{}",
            now.reason
        );
        let now = in_force(DryRun, None, None);
        assert_eq!(
            (now.mode, now.reason.as_str()),
            (DryRun, "the global remediation mode is dry_run")
        );
    }
}
