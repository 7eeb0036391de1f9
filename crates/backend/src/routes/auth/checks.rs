//! The field rules of account bodies, shared by signup, password reset and the users routes:
//! an e-mail, a password of 8 to 100 characters, names of bounded length.

use crate::auth::validate::{Violations, chars, is_email, normalize_email};

/// Minimum and maximum password length in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=100;

/// Adds the password-length messages for a field.
pub fn check_password(v: &mut Violations, password: Option<&str>, min_message: &str) {
    let n = password.map_or(0, chars);
    v.check(n < *PASSWORD_CHARS.start(), min_message);
    v.check(
        n > *PASSWORD_CHARS.end(),
        "Password must be at most 100 characters long",
    );
}

/// Normalises an e-mail (trimmed, lower case) and adds the message when it is not one.
pub fn check_email(v: &mut Violations, email: Option<&str>) -> String {
    let email = email.map(normalize_email).unwrap_or_default();
    v.check(!is_email(&email), "email must be an email");
    email
}

/// The checks signup and admin-create share: a valid e-mail, a password of 8–100
/// characters and names of at most 50. Returns the normalised e-mail.
pub fn check_new_user(
    v: &mut Violations,
    email: Option<&str>,
    password: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> String {
    let email = check_email(v, email);
    check_password(v, password, "Password must be at least 8 characters long");
    check_max(v, "firstName", first_name, 50);
    check_max(v, "lastName", last_name, 50);
    email
}

/// Adds the message for an optional name field (≤ 50 characters).
pub fn check_max(v: &mut Violations, field: &str, value: Option<&str>, max: usize) {
    v.check(
        value.is_some_and(|s| chars(s) > max),
        format!("{field} must be shorter than or equal to {max} characters"),
    );
}
