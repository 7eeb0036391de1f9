//! Field validation for request bodies: one message per violated rule.

/// Collects validation messages.
#[derive(Debug, Default)]
pub struct Violations(Vec<String>);

impl Violations {
    /// Empty.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `message` when `failed`.
    pub fn check(&mut self, failed: bool, message: impl Into<String>) {
        if failed {
            self.0.push(message.into());
        }
    }

    /// `Ok` when nothing failed, else 400 with the list.
    pub fn finish(self) -> Result<(), crate::error::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::error::ApiError::BadRequest(self.0.into()))
        }
    }

    /// The value a parse made, or `None` with the parse's messages added.
    pub fn parsed<T>(&mut self, parse: Result<T, Vec<String>>) -> Option<T> {
        match parse {
            Ok(value) => Some(value),
            Err(messages) => {
                self.0.extend(messages);
                None
            }
        }
    }

    /// [`Violations::finish`] that hands back the value of a [`Violations::parsed`], which is
    /// `Some` whenever nothing failed.
    pub fn finish_with<T>(self, value: Option<T>) -> Result<T, crate::error::ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(crate::error::ApiError::BadRequest(self.0.into())),
        }
    }
}

/// A pragmatic e-mail check: `local@domain.tld`, no whitespace, ≤ 255 characters.
#[must_use]
pub fn is_email(s: &str) -> bool {
    if s.is_empty()
        || s.chars().count() > 255
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && domain
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.chars().count() >= 2)
}

/// Trims and lowercases an e-mail.
#[must_use]
pub fn normalize_email(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Length in characters (not bytes).
#[must_use]
pub fn chars(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "a@b.co",
            "e2e-signup@example.com",
            "first.last+tag@sub.example.org",
        ] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "not-an-email",
            "a@b",
            "@b.co",
            "a@.co",
            "a b@c.de",
            "a@b..co",
            "a@b.c",
            "",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
