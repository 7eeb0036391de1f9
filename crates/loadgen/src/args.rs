//! `--flag value` arguments, and everything after `--` as a trailing command.

use std::{collections::BTreeMap, path::PathBuf, str::FromStr};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Parsed flags.
#[derive(Debug, Default)]
pub struct Args {
    flags: BTreeMap<String, String>,
    /// Words after `--`.
    pub trailing: Vec<String>,
}

impl Args {
    /// Parses `--name value` pairs up to an optional `--`.
    pub fn parse(argv: &[String]) -> anyhow::Result<Self> {
        let mut out = Self::default();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            if a == "--" {
                out.trailing = it.cloned().collect();
                break;
            }
            let Some(name) = a.strip_prefix("--") else {
                bail!("unexpected argument {a:?}");
            };
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            out.flags.insert(name.to_owned(), value.clone());
        }
        Ok(out)
    }

    /// A required string flag.
    pub fn str(&self, name: &str) -> anyhow::Result<&str> {
        self.flags
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("--{name} is required"))
    }

    /// An optional flag parsed as `T`, else `default`.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        match self.flags.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| anyhow::anyhow!("--{name}: cannot parse {v:?}")),
        }
    }

    /// A required flag parsed as `T`.
    pub fn get<T: FromStr>(&self, name: &str) -> anyhow::Result<T> {
        let v = self.str(name)?;
        v.parse()
            .map_err(|_| anyhow::anyhow!("--{name}: cannot parse {v:?}"))
    }

    /// A required path flag.
    pub fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        self.str(name).map(PathBuf::from)
    }
}

/// The state file the `stack` command writes.
pub fn read_state(path: &std::path::Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the stack state {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// A string field of the state, by JSON pointer.
pub fn state_str<'a>(state: &'a Value, pointer: &str) -> anyhow::Result<&'a str> {
    state
        .pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("the stack state has no {pointer}"))
}
