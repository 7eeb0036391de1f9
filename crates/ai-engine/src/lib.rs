//! placeholder: the service lands later; `detector` holds the pure numeric code.
pub mod detector;
