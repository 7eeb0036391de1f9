//! Compiled conditions: how they are built from JSON, checked during evaluation, and
//! explained. Why one failed is in `failure.rs`, the `timeRange` condition in `time_range.rs`.

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};

use crate::error::{ValidationError, ValidationErrorKind as K};
use crate::json::{json_eq, number_cmp};
use crate::request::Context;

mod failure;
mod time_range;

pub use failure::{ConditionFailure, IpProblem, MetadataProblem};
pub(crate) use time_range::TimeRange;

/// Longest `$regex` pattern, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// Bounds the compiled size of a `$regex`, so a short pattern cannot expand into a huge program.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The conditions of one policy, all of which must hold; cheapest checks first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions(Box<[Condition]>);

#[derive(Debug, Clone)]
pub(crate) enum Condition {
    Role(Box<str>),
    Roles(Box<[Box<str>]>),
    UserId(Box<str>),
    IpAddress(Box<str>),
    UserAgent(Box<str>),
    Metadata(Box<[MetadataCheck]>),
    IpRange(Box<[IpNet]>),
    TimeRange(TimeRange),
}

impl Condition {
    fn cost_rank(&self) -> u8 {
        match self {
            Condition::Role(_) | Condition::UserId(_) => 0,
            Condition::Roles(_) | Condition::IpAddress(_) | Condition::UserAgent(_) => 1,
            Condition::Metadata(_) => 2,
            Condition::IpRange(_) => 3,
            Condition::TimeRange(_) => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct MetadataCheck {
    key: Box<str>,
    test: MetadataTest,
}

#[derive(Debug, Clone)]
enum MetadataTest {
    Equals(Value),
    Operators(Box<[Operator]>),
}

#[derive(Debug, Clone)]
enum Operator {
    Eq(Value),
    Ne(Value),
    Gt(Number),
    Gte(Number),
    Lt(Number),
    Lte(Number),
    In(Box<[Value]>),
    Nin(Box<[Value]>),
    Exists(bool),
    Regex(Regex),
}

/// Per-evaluation inputs shared by all conditions; the IP is parsed at most once.
#[derive(Debug)]
pub(crate) struct Env<'c, 'a> {
    pub(crate) context: &'c Context<'a>,
    pub(crate) now: DateTime<Utc>,
    ip: OnceCell<Option<IpAddr>>,
}

impl<'c, 'a> Env<'c, 'a> {
    pub(crate) fn new(context: &'c Context<'a>, now: DateTime<Utc>) -> Self {
        Self {
            context,
            now,
            ip: OnceCell::new(),
        }
    }

    fn ip(&self) -> Option<IpAddr> {
        *self
            .ip
            .get_or_init(|| self.context.ip_address.and_then(parse_ip))
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip = IpAddr::from_str(s.trim()).ok()?;
    // An IPv4 client seen through a dual-stack socket is still that IPv4 client.
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

impl Conditions {
    /// All conditions hold.
    pub(crate) fn holds(&self, env: &Env<'_, '_>) -> bool {
        self.0.iter().all(|c| c.holds(env))
    }

    /// Every failing condition (empty when all hold).
    pub(crate) fn failures(&self, env: &Env<'_, '_>) -> Vec<ConditionFailure> {
        let mut out = Vec::new();
        for c in self.0.iter() {
            c.explain(env, &mut out);
        }
        out
    }

    /// Builds and checks `conditions` (already known to be an object).
    pub(crate) fn compile(map: &Map<String, Value>, path: &str) -> Result<Self, ValidationError> {
        let mut items = Vec::with_capacity(map.len());
        for (key, value) in map {
            let p = join(path, key);
            let condition = match key.as_str() {
                "role" => Condition::Role(string(value, &p)?.into()),
                "userId" => Condition::UserId(string(value, &p)?.into()),
                "ipAddress" => Condition::IpAddress(string(value, &p)?.into()),
                "userAgent" => Condition::UserAgent(string(value, &p)?.into()),
                "roles" => Condition::Roles(compile_roles(value, &p)?),
                "ipRange" => Condition::IpRange(compile_ip_range(value, &p)?),
                "timeRange" => Condition::TimeRange(TimeRange::compile(value, &p)?),
                "metadata" => Condition::Metadata(compile_metadata(value, &p)?),
                _ => return Err(ValidationError::new(p, K::UnknownCondition)),
            };
            items.push(condition);
        }
        // Stable: keeps document order within a rank, so explanations are deterministic.
        items.sort_by_key(Condition::cost_rank);
        Ok(Conditions(items.into_boxed_slice()))
    }
}

impl Condition {
    fn holds(&self, env: &Env<'_, '_>) -> bool {
        let ctx = env.context;
        match self {
            Condition::Role(r) => ctx.role == Some(&**r),
            Condition::UserId(u) => ctx.user_id == Some(&**u),
            Condition::IpAddress(ip) => ctx.ip_address == Some(&**ip),
            Condition::UserAgent(ua) => ctx.user_agent == Some(&**ua),
            Condition::Roles(roles) => ctx.role.is_some_and(|r| roles.iter().any(|x| **x == *r)),
            Condition::Metadata(checks) => {
                let md = ctx.metadata;
                checks
                    .iter()
                    .all(|c| c.holds(md.and_then(|m| m.get(&*c.key))))
            }
            Condition::IpRange(nets) => env
                .ip()
                .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Condition::TimeRange(range) => range.holds(env.now),
        }
    }

    fn explain(&self, env: &Env<'_, '_>, out: &mut Vec<ConditionFailure>) {
        if let Condition::Metadata(checks) = self {
            for check in checks.iter() {
                if let Some(f) = check.explain(env.context.metadata) {
                    out.push(f);
                }
            }
            return;
        }
        if self.holds(env) {
            return;
        }
        let ctx = env.context;
        let owned = |s: Option<&str>| s.map(str::to_owned);
        out.push(match self {
            Condition::Role(r) => ConditionFailure::Role {
                expected: r.to_string(),
                actual: owned(ctx.role),
            },
            Condition::UserId(u) => ConditionFailure::UserId {
                expected: u.to_string(),
                actual: owned(ctx.user_id),
            },
            Condition::IpAddress(ip) => ConditionFailure::IpAddress {
                expected: ip.to_string(),
                actual: owned(ctx.ip_address),
            },
            Condition::UserAgent(ua) => ConditionFailure::UserAgent {
                expected: ua.to_string(),
                actual: owned(ctx.user_agent),
            },
            Condition::Roles(roles) => ConditionFailure::Roles {
                expected: roles.iter().map(|r| r.to_string()).collect(),
                actual: owned(ctx.role),
            },
            Condition::IpRange(nets) => ConditionFailure::IpRange {
                ranges: nets.iter().map(IpNet::to_string).collect(),
                actual: owned(ctx.ip_address),
                problem: match (ctx.ip_address, env.ip()) {
                    (None, _) => IpProblem::Missing,
                    (Some(_), None) => IpProblem::Unparsable,
                    (Some(_), Some(_)) => IpProblem::OutOfRange,
                },
            },
            Condition::TimeRange(range) => ConditionFailure::TimeRange {
                range: range.to_string(),
                now: env.now,
                local_time: range.local_time(env.now),
            },
            // Handled above.
            Condition::Metadata(_) => return,
        });
    }
}

impl MetadataCheck {
    fn holds(&self, actual: Option<&Value>) -> bool {
        match &self.test {
            MetadataTest::Equals(v) => actual.is_some_and(|a| json_eq(a, v)),
            MetadataTest::Operators(ops) => ops.iter().all(|op| op.holds(actual)),
        }
    }

    fn explain(&self, metadata: Option<&Map<String, Value>>) -> Option<ConditionFailure> {
        let actual = metadata.and_then(|m| m.get(&*self.key));
        if self.holds(actual) {
            return None;
        }
        let failing = match &self.test {
            MetadataTest::Equals(_) => None,
            MetadataTest::Operators(ops) => ops.iter().find(|op| !op.holds(actual)),
        };
        let problem = match (metadata, actual, failing) {
            // `$exists: true` on a missing key is an operator failure, not "missing".
            (_, None, Some(op @ Operator::Exists(_))) => MetadataProblem::OperatorFailed {
                operator: op.name(),
            },
            (None, _, _) => MetadataProblem::NoMetadata,
            (Some(_), None, _) => MetadataProblem::MissingKey,
            (Some(_), Some(_), None) => MetadataProblem::NotEqual,
            (Some(_), Some(_), Some(op)) => MetadataProblem::OperatorFailed {
                operator: op.name(),
            },
        };
        Some(ConditionFailure::Metadata {
            key: self.key.to_string(),
            expected: self.describe(),
            actual: actual.cloned(),
            problem,
        })
    }

    fn describe(&self) -> String {
        match &self.test {
            MetadataTest::Equals(v) => format!("= {v}"),
            MetadataTest::Operators(ops) => {
                let mut s = String::new();
                for (i, op) in ops.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    let _ = write!(s, "{} {}", op.name(), op.operand());
                }
                s
            }
        }
    }
}

impl Operator {
    fn name(&self) -> &'static str {
        match self {
            Operator::Eq(_) => "$eq",
            Operator::Ne(_) => "$ne",
            Operator::Gt(_) => "$gt",
            Operator::Gte(_) => "$gte",
            Operator::Lt(_) => "$lt",
            Operator::Lte(_) => "$lte",
            Operator::In(_) => "$in",
            Operator::Nin(_) => "$nin",
            Operator::Exists(_) => "$exists",
            Operator::Regex(_) => "$regex",
        }
    }

    fn operand(&self) -> String {
        match self {
            Operator::Eq(v) | Operator::Ne(v) => v.to_string(),
            Operator::Gt(n) | Operator::Gte(n) | Operator::Lt(n) | Operator::Lte(n) => {
                n.to_string()
            }
            Operator::In(vs) | Operator::Nin(vs) => Value::Array(vs.to_vec()).to_string(),
            Operator::Exists(b) => b.to_string(),
            Operator::Regex(r) => Value::String(r.as_str().to_owned()).to_string(),
        }
    }

    /// Only `$exists` is evaluated on a missing key; every other operator is then false.
    fn holds(&self, actual: Option<&Value>) -> bool {
        let Some(a) = actual else {
            return matches!(self, Operator::Exists(false));
        };
        let cmp = |b: &Number, ok: fn(std::cmp::Ordering) -> bool| match a {
            Value::Number(x) => number_cmp(x, b).is_some_and(ok),
            _ => false,
        };
        match self {
            Operator::Eq(b) => json_eq(a, b),
            Operator::Ne(b) => !json_eq(a, b),
            Operator::Gt(b) => cmp(b, std::cmp::Ordering::is_gt),
            Operator::Gte(b) => cmp(b, std::cmp::Ordering::is_ge),
            Operator::Lt(b) => cmp(b, std::cmp::Ordering::is_lt),
            Operator::Lte(b) => cmp(b, std::cmp::Ordering::is_le),
            Operator::In(bs) => bs.iter().any(|b| json_eq(a, b)),
            Operator::Nin(bs) => !bs.iter().any(|b| json_eq(a, b)),
            Operator::Exists(b) => *b,
            Operator::Regex(re) => matches!(a, Value::String(s) if re.is_match(s)),
        }
    }

    fn compile(name: &str, operand: &Value, path: &str) -> Result<Operator, ValidationError> {
        let number = || match operand {
            Value::Number(n) => Ok(n.clone()),
            _ => Err(ValidationError::new(path, K::WrongType("a number"))),
        };
        let array = || match operand {
            Value::Array(vs) => Ok(vs.clone().into_boxed_slice()),
            _ => Err(ValidationError::new(path, K::WrongType("an array"))),
        };
        Ok(match name {
            "$eq" => Operator::Eq(operand.clone()),
            "$ne" => Operator::Ne(operand.clone()),
            "$gt" => Operator::Gt(number()?),
            "$gte" => Operator::Gte(number()?),
            "$lt" => Operator::Lt(number()?),
            "$lte" => Operator::Lte(number()?),
            "$in" => Operator::In(array()?),
            "$nin" => Operator::Nin(array()?),
            "$exists" => match operand {
                Value::Bool(b) => Operator::Exists(*b),
                _ => return Err(ValidationError::new(path, K::WrongType("a boolean"))),
            },
            "$regex" => Operator::Regex(compile_regex(operand, path)?),
            _ => return Err(ValidationError::new(path, K::UnknownOperator)),
        })
    }
}

fn compile_regex(operand: &Value, path: &str) -> Result<Regex, ValidationError> {
    let Value::String(pattern) = operand else {
        return Err(ValidationError::new(path, K::WrongType("a string")));
    };
    if pattern.len() > MAX_REGEX_LEN {
        return Err(ValidationError::new(path, K::RegexTooLong));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| ValidationError::new(path, K::BadRegex(e.to_string())))
}

fn compile_metadata(value: &Value, path: &str) -> Result<Box<[MetadataCheck]>, ValidationError> {
    let Value::Object(map) = value else {
        return Err(ValidationError::new(path, K::WrongType("an object")));
    };
    let mut checks = Vec::with_capacity(map.len());
    for (key, expected) in map {
        let p = join(path, key);
        let test = match expected {
            Value::Object(ops) if !ops.is_empty() && ops.keys().any(|k| k.starts_with('$')) => {
                let mut compiled = Vec::with_capacity(ops.len());
                for (name, operand) in ops {
                    let op_path = join(&p, name);
                    if !name.starts_with('$') {
                        return Err(ValidationError::new(op_path, K::MixedOperators));
                    }
                    compiled.push(Operator::compile(name, operand, &op_path)?);
                }
                MetadataTest::Operators(compiled.into_boxed_slice())
            }
            other => MetadataTest::Equals(other.clone()),
        };
        checks.push(MetadataCheck {
            key: key.as_str().into(),
            test,
        });
    }
    Ok(checks.into_boxed_slice())
}

fn compile_roles(value: &Value, path: &str) -> Result<Box<[Box<str>]>, ValidationError> {
    let Value::Array(items) = value else {
        return Err(ValidationError::new(
            path,
            K::WrongType("an array of strings"),
        ));
    };
    if items.is_empty() {
        return Err(ValidationError::new(path, K::EmptyList));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| string(v, &format!("{path}[{i}]")).map(Box::from))
        .collect()
}

fn compile_ip_range(value: &Value, path: &str) -> Result<Box<[IpNet]>, ValidationError> {
    let parse = |s: &str, p: &str| -> Result<IpNet, ValidationError> {
        let s = s.trim();
        IpNet::from_str(s)
            .map(|n| n.trunc())
            .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
            .map_err(|_| ValidationError::new(p, K::BadCidr(s.to_owned())))
    };
    match value {
        Value::String(s) => Ok(Box::new([parse(s, path)?])),
        Value::Array(items) if items.is_empty() => Err(ValidationError::new(path, K::EmptyList)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let p = format!("{path}[{i}]");
                parse(string(v, &p)?, &p)
            })
            .collect(),
        _ => Err(ValidationError::new(
            path,
            K::WrongType("a CIDR string or an array of CIDR strings"),
        )),
    }
}

/// Appends a key to a dotted path; keys that would make the path ambiguous (empty, or holding
/// `.`, `[`, `]`, `"` or whitespace) are written in brackets, JSON-quoted: `metadata["a.b"]`.
pub(crate) fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && !key
            .chars()
            .any(|c| matches!(c, '.' | '[' | ']' | '"') || c.is_whitespace() || c.is_control());
    match (path.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.to_owned())),
    }
}

pub(crate) fn string<'v>(value: &'v Value, path: &str) -> Result<&'v str, ValidationError> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(ValidationError::new(path, K::WrongType("a string"))),
    }
}
