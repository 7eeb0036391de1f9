//! The guardrails on automated actions: a cooldown per deployment and a cap per namespace
//! and hour. The store checks them atomically while it moves the incident; this is the rule
//! that says which one held when the move did not happen.

/// The limits, from the loop's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Seconds after an action during which the same deployment is not acted on again.
    pub cooldown_seconds: i64,
    /// Actions per namespace in any hour.
    pub max_per_hour: i64,
}

/// Which guardrail blocks an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// The deployment was acted on less than the cooldown ago.
    Cooldown {
        /// Seconds until the cooldown ends.
        seconds_left: i64,
    },
    /// The namespace had its cap of actions in the last hour.
    Capped {
        /// Actions in the last hour, counted up to the cap.
        actions: i64,
    },
}

/// The guardrail that blocks an action, if any: the cooldown first (`since_last_action` is
/// the seconds since the deployment's latest action, `None` if it has none), then the cap
/// (`recent_actions` in the namespace in the last hour). Negative limits count as zero.
#[must_use]
pub fn blocked(
    limits: Limits,
    since_last_action: Option<i64>,
    recent_actions: i64,
) -> Option<Blocked> {
    if let Some(since) = since_last_action {
        let seconds_left = limits.cooldown_seconds.max(0) - since;
        if seconds_left > 0 {
            return Some(Blocked::Cooldown { seconds_left });
        }
    }
    (recent_actions >= limits.max_per_hour.max(0)).then_some(Blocked::Capped {
        actions: recent_actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        cooldown_seconds: 300,
        max_per_hour: 3,
    };

    #[test]
    fn the_cooldown_holds_until_it_has_fully_passed() {
        assert_eq!(
            blocked(LIMITS, Some(10), 0),
            Some(Blocked::Cooldown { seconds_left: 290 })
        );
        assert_eq!(
            blocked(LIMITS, Some(299), 0),
            Some(Blocked::Cooldown { seconds_left: 1 })
        );
        assert_eq!(blocked(LIMITS, Some(300), 0), None);
        assert_eq!(blocked(LIMITS, None, 0), None);
    }

    #[test]
    fn the_cap_blocks_at_its_count_and_the_cooldown_is_named_first() {
        assert_eq!(blocked(LIMITS, None, 2), None);
        assert_eq!(
            blocked(LIMITS, None, 3),
            Some(Blocked::Capped { actions: 3 })
        );
        assert_eq!(
            blocked(LIMITS, Some(1), 3),
            Some(Blocked::Cooldown { seconds_left: 299 })
        );
    }

    #[test]
    fn negative_limits_count_as_zero() {
        let none = Limits {
            cooldown_seconds: -5,
            max_per_hour: -1,
        };
        assert_eq!(
            blocked(none, Some(0), 0),
            Some(Blocked::Capped { actions: 0 })
        );
    }
}
