//! Action and resource patterns: `*` is any run of characters (possibly empty,
//! crossing `/` and `:`), `?` exactly one character, everything else literal; anchored at both
//! ends, case-sensitive. Never a regex, so `.` `+` `(` `[` are plain characters.

/// One compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*` alone.
    Any,
    /// No wildcard.
    Exact(Box<str>),
    /// `prefix*` with no other wildcard.
    Prefix(Box<str>),
    /// `*suffix` with no other wildcard.
    Suffix(Box<str>),
    /// Anything else.
    Glob(Box<[Token]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Star,
    One,
    Lit(char),
}

impl Pattern {
    pub(crate) fn compile(pattern: &str) -> Pattern {
        if pattern == "*" {
            return Pattern::Any;
        }
        let stars = pattern.matches('*').count();
        let has_one = pattern.contains('?');
        if stars == 0 && !has_one {
            return Pattern::Exact(pattern.into());
        }
        if stars == 1 && !has_one {
            if let Some(prefix) = pattern.strip_suffix('*') {
                return Pattern::Prefix(prefix.into());
            }
            if let Some(suffix) = pattern.strip_prefix('*') {
                return Pattern::Suffix(suffix.into());
            }
        }
        let mut tokens: Vec<Token> = Vec::with_capacity(pattern.len());
        for c in pattern.chars() {
            let token = match c {
                '*' => Token::Star,
                '?' => Token::One,
                c => Token::Lit(c),
            };
            // Consecutive stars are one star; keeping one bounds the backtracking.
            if token == Token::Star && tokens.last() == Some(&Token::Star) {
                continue;
            }
            tokens.push(token);
        }
        Pattern::Glob(tokens.into_boxed_slice())
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) => **p == *text,
            Pattern::Prefix(p) => text.starts_with(&**p),
            Pattern::Suffix(s) => text.ends_with(&**s),
            Pattern::Glob(tokens) => glob_match(tokens, text),
        }
    }
}

/// Iterative wildcard matching with a single backtrack point: O(|tokens| × |text|) worst case.
fn glob_match(tokens: &[Token], text: &str) -> bool {
    let next_char = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        match tokens.get(p) {
            Some(Token::Star) => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::One) => {
                if let Some(c) = next_char(t) {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            }
            Some(Token::Lit(l)) => {
                if let Some(c) = next_char(t)
                    && c == *l
                {
                    p += 1;
                    t += c.len_utf8();
                    continue;
                }
            }
            None => {
                if t == text.len() {
                    return true;
                }
            }
        }
        // Mismatch: let the last star swallow one more character and retry.
        match star {
            Some((sp, st)) => match next_char(st) {
                Some(c) => {
                    let st = st + c.len_utf8();
                    star = Some((sp, st));
                    p = sp + 1;
                    t = st;
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// A list of patterns: matches when any element matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternList {
    /// Contains `*`.
    Any,
    /// Otherwise.
    Some(Box<[Pattern]>),
}

impl PatternList {
    pub(crate) fn compile<'a>(patterns: impl IntoIterator<Item = &'a str>) -> PatternList {
        let compiled: Vec<Pattern> = patterns.into_iter().map(Pattern::compile).collect();
        if compiled.contains(&Pattern::Any) {
            PatternList::Any
        } else {
            PatternList::Some(compiled.into_boxed_slice())
        }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            PatternList::Any => true,
            PatternList::Some(patterns) => patterns.iter().any(|p| p.matches(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::compile(pattern).matches(text)
    }

    #[test]
    fn spec_examples_match_as_documented() {
        assert!(m("/api/*", "/api/"));
        assert!(m("/api/*", "/api/v1/users/5"));
        assert!(!m("/api/*", "/api"));
        assert!(m("read*", "read"));
        assert!(m("read*", "readAll"));
        assert!(m("/api/users/?", "/api/users/1"));
        assert!(!m("/api/users/?", "/api/users/12"));
        assert!(m("service:*", "service:api"));
    }

    #[test]
    fn regex_metacharacters_are_literal() {
        assert!(!m("api.*", "apiXfoo"));
        assert!(m("api.*", "api.foo"));
        assert!(!m("a+b", "aab"));
        assert!(m("a+b", "a+b"));
        assert!(m("(x)[y]{2}|z^$\\", "(x)[y]{2}|z^$\\"));
        assert!(!m("[ab]", "a"));
        assert!(m("data:pii:*", "data:pii:ssn"));
        assert!(!m("data:pii:*", "data:piiX"));
    }

    #[test]
    fn globs_with_several_wildcards_backtrack_correctly() {
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(m("a*b?c", "aXXbYc"));
        assert!(m("a*b?c", "abbbYc"));
        assert!(!m("a*b?c", "abc"));
        assert!(m("*.log", "a.b.log"));
        assert!(m("**", ""));
        assert!(m("?", "é"));
        assert!(!m("?", ""));
        assert!(m("é*?", "éxy"));
        assert!(m("*?*", "x"));
    }

    #[test]
    fn matching_is_case_sensitive_and_anchored() {
        assert!(!m("Read", "read"));
        assert!(!m("read", "reading"));
        assert!(!m("*ing", "ingX"));
        assert!(m("*ing", "reading"));
    }

    #[test]
    fn a_list_matches_when_any_element_matches() {
        let list = PatternList::compile(["read", "list"]);
        assert!(list.matches("list"));
        assert!(!list.matches("delete"));
        assert_eq!(PatternList::compile(["x", "*"]), PatternList::Any);
    }
}
