//! Content-based discovery (`cfs`/`cfq`, TS-0004 clause 7.3.3.17.13; the query syntax of
//! TS-0001 annex J.2): conditions on the JSON data a `<contentInstance>` holds in `con`.
//!
//! Release 3 defines one syntax, `JSON_PATH_SYNTAX` (1, TS-0004 table 6.3.4.2.37-1): a
//! path from `$` (the whole data) through `.name`, `."quoted name"` and `[n]`, a keyword
//! (`EQ`, `NE`, `GT`, `LT`, `GE`, `LE`, `MATCH`) and a value, with such conditions joined by
//! `AND` and `OR` (AND binds tighter; the annex defines no parentheses). The evaluator is
//! small and bounded: the query's length, its number of conditions and each path's depth
//! are capped when it is parsed, a path is followed in time linear in its length, and the
//! data is parsed with `serde_json`, whose nesting limit keeps hostile input from
//! exhausting the stack. Nothing here panics on any input.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// The one syntax Release 3 defines (`m2m:contentFilterSyntax` 1, `JSON_PATH_SYNTAX`).
pub const JSON_PATH_SYNTAX: u64 = 1;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 2048;
/// Most conditions in one query.
pub const MAX_CONDITIONS: usize = 32;
/// Most steps in one path.
pub const MAX_PATH_STEPS: usize = 32;

/// A parsed `contentFilterQuery`: conditions in disjunctive form (any group whose
/// conditions all hold).
#[derive(Debug, Clone, PartialEq)]
pub struct ContentQuery {
    any_of: Vec<Vec<Condition>>,
}

/// One `path KEYWORD value` condition.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    path: Vec<Step>,
    test: Test,
}

/// One step of a path from `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `.name` or `."name"`: a member of an object.
    Member(String),
    /// `[n]`: the n-th item of an array, from 0.
    Item(usize),
}

/// What a condition asks of the value the path reaches.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// `EQ`: a string equal to the text, or a number equal to it when it is one.
    Equals(Literal),
    /// `NE`: a string or number that `EQ` would not match.
    NotEquals(Literal),
    /// `GT`, `LT`, `GE`, `LE`: a number compared with the given one.
    Compare(Order, f64),
    /// `MATCH`: a string containing the text.
    Contains(String),
}

/// A value as written in the query: its text, and its number when it reads as one.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    text: String,
    number: Option<f64>,
}

/// The numeric comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
}

fn bad(why: impl std::fmt::Display) -> Error {
    Error::bad_request(format!("invalid contentFilterQuery: {why}"))
}

impl ContentQuery {
    /// Parses a query written in `syntax`; a syntax Release 3 does not define, or a query
    /// that does not follow annex J.2 or exceeds the bounds, is 4000.
    pub fn parse(syntax: u64, text: &str) -> Result<Self> {
        if syntax != JSON_PATH_SYNTAX {
            return Err(Error::bad_request(format!(
                "contentFilterSyntax {syntax} is not defined (1: JSON_PATH_SYNTAX)"
            )));
        }
        if text.len() > MAX_QUERY_BYTES {
            return Err(bad(format!("longer than {MAX_QUERY_BYTES} bytes")));
        }
        let tokens = tokens(text)?;
        let mut any_of = vec![Vec::new()];
        let mut count = 0;
        let mut rest = tokens.as_slice();
        loop {
            let [path, keyword, value, tail @ ..] = rest else {
                return Err(bad("expected 'path KEYWORD value'"));
            };
            count += 1;
            if count > MAX_CONDITIONS {
                return Err(bad(format!("more than {MAX_CONDITIONS} conditions")));
            }
            let condition = Condition {
                path: parse_path(path)?,
                test: parse_test(keyword, value)?,
            };
            if let Some(group) = any_of.last_mut() {
                group.push(condition);
            }
            match tail {
                [] => break,
                [join, more @ ..] if join == "AND" => rest = more,
                [join, more @ ..] if join == "OR" => {
                    any_of.push(Vec::new());
                    rest = more;
                }
                [other, ..] => return Err(bad(format!("expected AND or OR, found '{other}'"))),
            }
        }
        Ok(Self { any_of })
    }

    /// Whether the data meets the query.
    pub fn matches(&self, data: &Value) -> bool {
        self.any_of
            .iter()
            .any(|group| group.iter().all(|c| c.holds(data)))
    }

    /// Whether a `<contentInstance>`'s attributes hold JSON data that meets the query (TS-0001
    /// annex J.2 applies to data that `cnf` says is JSON). `con` given as a JSON object or
    /// array is that data; `con` given as text is parsed when `cnf` is absent or names a JSON
    /// media type (`application/json` or a `+json` suffix) stored as is (encoding absent or
    /// 0). Anything else, including text that is not JSON, does not match.
    pub fn matches_instance(&self, attrs: &Map<String, Value>) -> bool {
        match attrs.get("con") {
            Some(Value::String(text)) => {
                let json = attrs.get("cnf").and_then(Value::as_str).is_none_or(is_json);
                json && serde_json::from_str::<Value>(text).is_ok_and(|data| self.matches(&data))
            }
            Some(data @ (Value::Object(_) | Value::Array(_))) => self.matches(data),
            _ => false,
        }
    }
}

/// Whether a `cnf` (`type/subtype[:encoding[:encryption]]`) names JSON stored as is.
fn is_json(cnf: &str) -> bool {
    let mut parts = cnf.split(':');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let plain = parts.next().is_none_or(|e| e == "0");
    let encrypted = parts.next().is_some();
    plain && !encrypted && (media == "application/json" || media.ends_with("+json"))
}

impl Condition {
    fn holds(&self, data: &Value) -> bool {
        let mut at = data;
        for step in &self.path {
            let next = match (step, at) {
                (Step::Member(name), Value::Object(map)) => map.get(name),
                (Step::Item(n), Value::Array(items)) => items.get(*n),
                _ => None,
            };
            match next {
                Some(v) => at = v,
                None => return false,
            }
        }
        match &self.test {
            Test::Equals(lit) => equals(at, lit).unwrap_or(false),
            Test::NotEquals(lit) => equals(at, lit).is_some_and(|eq| !eq),
            Test::Compare(order, wanted) => at.as_f64().is_some_and(|v| match order {
                Order::Greater => v > *wanted,
                Order::Less => v < *wanted,
                Order::GreaterOrEqual => v >= *wanted,
                Order::LessOrEqual => v <= *wanted,
            }),
            Test::Contains(part) => at.as_str().is_some_and(|s| s.contains(part.as_str())),
        }
    }
}

/// Whether a string or number equals the literal; `None` for other values, which `EQ` and
/// `NE` do not apply to (annex J.2: string or number).
fn equals(v: &Value, lit: &Literal) -> Option<bool> {
    match v {
        Value::String(s) => Some(*s == lit.text),
        Value::Number(n) => Some(
            lit.number
                .zip(n.as_f64())
                .is_some_and(|(want, have)| want == have),
        ),
        _ => None,
    }
}

/// Splits on spaces, keeping a double-quoted section (with `\"` and `\\` escapes) whole.
fn tokens(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                current.push(c);
                match chars.next() {
                    Some(e) => current.push(e),
                    None => return Err(bad("a '\\' ends the query")),
                }
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(bad("a quote is not closed"));
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// The text of a quoted token without its quotes and escapes.
fn unquote(token: &str) -> Option<String> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn parse_path(token: &str) -> Result<Vec<Step>> {
    let Some(mut rest) = token.strip_prefix('$') else {
        return Err(bad(format!("path '{token}' must start with '$'")));
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if steps.len() == MAX_PATH_STEPS {
            return Err(bad(format!("path deeper than {MAX_PATH_STEPS} steps")));
        }
        if let Some(after) = rest.strip_prefix('[') {
            let (index, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("'[' without ']'"))?;
            let n = index
                .parse::<u32>()
                .map_err(|_| bad(format!("'[{index}]' is not an array position")))?;
            steps.push(Step::Item(n as usize));
            rest = tail;
        } else if let Some(after) = rest.strip_prefix(".\"") {
            let end = closing_quote(after).ok_or_else(|| bad("a quoted name is not closed"))?;
            let name = unquote(&format!("\"{}\"", &after[..end]))
                .ok_or_else(|| bad("a quoted name is malformed"))?;
            steps.push(Step::Member(name));
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() || name.contains(['"', ']', '$', '{', '}']) {
                return Err(bad(format!("'{name}' is not a member name (quote it)")));
            }
            steps.push(Step::Member(name.to_owned()));
            rest = &after[end..];
        } else {
            return Err(bad(format!("unexpected '{rest}' in path '{token}'")));
        }
    }
    Ok(steps)
}

/// Where the quote that closes a quoted name is (its byte offset), skipping escapes.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_test(keyword: &str, value: &str) -> Result<Test> {
    let text = match unquote(value) {
        Some(t) => t,
        None if value.starts_with('"') => return Err(bad(format!("malformed value {value}"))),
        None => value.to_owned(),
    };
    let number = || {
        text.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| bad(format!("{keyword} needs a number, not '{value}'")))
    };
    let literal = || Literal {
        number: text.parse::<f64>().ok().filter(|n| n.is_finite()),
        text: text.clone(),
    };
    Ok(match keyword {
        "EQ" => Test::Equals(literal()),
        "NE" => Test::NotEquals(literal()),
        "GT" => Test::Compare(Order::Greater, number()?),
        "LT" => Test::Compare(Order::Less, number()?),
        "GE" => Test::Compare(Order::GreaterOrEqual, number()?),
        "LE" => Test::Compare(Order::LessOrEqual, number()?),
        "MATCH" => Test::Contains(text.clone()),
        other => return Err(bad(format!("'{other}' is not a keyword of annex J.2"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(text: &str) -> ContentQuery {
        ContentQuery::parse(1, text).expect(text)
    }

    #[test]
    fn keywords_paths_and_joins() {
        let data = json!({"temp": 21.5, "unit": "Cel", "room": {"name": "hall 2"},
            "readings": [3, 7], "my.key": "x", "ok": true});
        let on = |text: &str| q(text).matches(&data);
        assert!(on("$.temp GT 20") && !on("$.temp GT 21.5") && on("$.temp GE 21.5"));
        assert!(on("$.temp LT 22") && on("$.temp LE 21.5") && !on("$.temp LT 21.5"));
        assert!(on("$.unit EQ Cel") && on("$.unit EQ \"Cel\"") && !on("$.unit EQ cel"));
        assert!(on("$.unit NE Far") && !on("$.unit NE Cel"));
        assert!(on("$.temp EQ 21.5") && on("$.temp NE 3"));
        assert!(on("$.room.name MATCH \"ll 2\"") && !on("$.room.name MATCH x"));
        assert!(on("$.readings[1] EQ 7") && !on("$.readings[2] EQ 7"));
        assert!(on("$.\"my.key\" EQ x"));
        // AND binds tighter than OR.
        assert!(on("$.temp GT 30 OR $.unit EQ Cel AND $.temp LT 22"));
        assert!(!on("$.temp GT 30 OR $.unit EQ Cel AND $.temp GT 22"));
        // A missing path, a value of another kind: no match, for NE as well.
        assert!(!on("$.nosuch NE 1") && !on("$.ok EQ true") && !on("$.unit GT 1"));
        assert!(!on("$.room NE x"));
    }

    #[test]
    fn refusals() {
        assert!(ContentQuery::parse(2, "$.a EQ 1").is_err());
        let long = format!("$.a EQ {}", "x".repeat(MAX_QUERY_BYTES));
        let many = vec!["$.a EQ 1"; MAX_CONDITIONS + 1].join(" AND ");
        let deep = format!("${} EQ 1", ".a".repeat(MAX_PATH_STEPS + 1));
        for bad in [
            "",
            "$.a",
            "$.a EQ",
            "a EQ 1",
            "$.a XX 1",
            "$.a GT x",
            "$.a EQ 1 AND",
            "$.a EQ 1 XOR $.b EQ 2",
            "$.a EQ \"x",
            "$.[1] EQ 1",
            "$[x] EQ 1",
            "$[1 EQ 1",
            "$.\"a EQ 1",
            "$.a EQ \"x\"y\"",
            "$..a EQ 1",
            "$.a GT inf",
            long.as_str(),
            many.as_str(),
            deep.as_str(),
        ] {
            assert!(ContentQuery::parse(1, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instances() {
        let query = q("$.t GT 20");
        let cin = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert!(query.matches_instance(&cin(json!({"con": "{\"t\": 25}"}))));
        assert!(query.matches_instance(&cin(json!({"con": {"t": 25}}))));
        assert!(query.matches_instance(&cin(
            json!({"con": "{\"t\": 25}", "cnf": "application/json:0"})
        )));
        assert!(query.matches_instance(&cin(
            json!({"con": "{\"t\": 25}", "cnf": "application/senml+json"})
        )));
        for not in [
            json!({"con": "{\"t\": 25}", "cnf": "text/plain:0"}),
            json!({"con": "{\"t\": 25}", "cnf": "application/json:1"}),
            json!({"con": "{\"t\": 25}", "cnf": "application/json:0:1"}),
            json!({"con": "not json"}),
            json!({"con": "{\"t\": 15}"}),
            json!({"con": 25}),
            json!({}),
        ] {
            assert!(!query.matches_instance(&cin(not.clone())), "{not}");
        }
    }
}
