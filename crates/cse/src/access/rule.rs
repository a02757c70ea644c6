//! Rules compiled for deciding: each stored `m2m:setOfAcrs` is parsed once (by the model's
//! parser, the same one that validated it) and its `acor` entries are classified once
//! against this CSE's SP-ID and CSE-ID, so a decision only compares prepared values.

use crate::config::CseConfig;
use model::resources::acp::{self, AccessContext, ObjectDetails};
use serde_json::Value;
use std::fmt;

/// Which privileges of an ACP a decision uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSet {
    /// `pv`: access to the resources that name the ACP in `acpi` (or `macp`).
    Privileges,
    /// `pvs`: access to the ACP itself, and changes of `acpi` that name it.
    SelfPrivileges,
}

impl RuleSet {
    /// The attribute's short name.
    pub fn attribute(self) -> &'static str {
        match self {
            Self::Privileges => "pv",
            Self::SelfPrivileges => "pvs",
        }
    }
}

/// The SP and CSE this CSE is, for turning IDs into their absolute form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The M2M-SP-ID without slashes.
    pub sp_id: String,
    /// The CSE-ID without slashes.
    pub cse_id: String,
}

impl Domain {
    /// The domain of a configuration.
    pub fn of(config: &CseConfig) -> Self {
        Self {
            sp_id: config.sp_id.clone(),
            cse_id: config.cse_id.clone(),
        }
    }
}

/// What one `acor` entry stands for, decided when the rule is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginatorEntry {
    /// `all`: anyone.
    All,
    /// `//sp.example`: every AE and CSE of that M2M SP domain. No wildcards (TS-0003
    /// clause 7.1.3; TS-0004 allows them, the two texts disagree, we take the stricter).
    SpDomain(String),
    /// An AE-ID or CSE-ID in absolute form (`//sp/cse/Cx`): compared as a whole.
    Id(String),
    /// A pattern of them in absolute form (`//sp/cse/C*`); `*` matches within one path
    /// segment.
    Pattern(String),
    /// Anything else: a `<group>` (by resource ID or address) or a Role-ID. It admits an
    /// originator only through the facts the caller gathered (group membership, verified
    /// roles), never by comparing it with `From`.
    Named(String),
}

impl OriginatorEntry {
    /// Classifies an entry as written in `acor`.
    pub fn classify(entry: &str, domain: &Domain) -> Self {
        if entry == "all" {
            return Self::All;
        }
        if let Some(abs) = entry.strip_prefix("//") {
            return match abs.split_once('/') {
                None => Self::SpDomain(abs.to_owned()),
                Some((sp, rest)) if sp == domain.sp_id && is_local_resource(rest, domain) => {
                    Self::Named(entry.to_owned())
                }
                Some(_) => Self::id(entry.to_owned()),
            };
        }
        if let Some(rest) = entry.strip_prefix('/') {
            return if is_local_resource(rest, domain) {
                Self::Named(entry.to_owned())
            } else {
                Self::id(format!("//{}/{rest}", domain.sp_id))
            };
        }
        if is_stem_pattern(entry) {
            return Self::id(if entry.starts_with('S') {
                format!("//{}/{entry}", domain.sp_id)
            } else {
                format!("//{}/{}/{entry}", domain.sp_id, domain.cse_id)
            });
        }
        Self::Named(entry.to_owned())
    }

    /// An absolute ID, or a pattern when it has a `*`.
    fn id(absolute: String) -> Self {
        if absolute.contains('*') {
            Self::Pattern(absolute)
        } else {
            Self::Id(absolute)
        }
    }
}

/// `cse/rest` where `cse` is this CSE and `rest` is not one AE-ID (pattern): an address of a
/// resource here (a `<group>`), which no originator can be.
fn is_local_resource(sp_relative: &str, domain: &Domain) -> bool {
    match sp_relative.split_once('/') {
        Some((cse, rest)) => cse == domain.cse_id && !is_stem_pattern(rest),
        None => false,
    }
}

/// An AE-ID stem, possibly with `*`: starts with `C` or `S`, no `/`.
fn is_stem_pattern(s: &str) -> bool {
    (s.starts_with('C') || s.starts_with('S'))
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '*'))
}

/// The originator of a request in the forms `acor` entries are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The identifier as the CSE uses it (AE-ID stem, or SP-relative CSE-ID path).
    pub id: String,
    /// Its absolute forms (`//sp/cse/Cx`; an `S` AE-ID has two: `//sp/Sx` and
    /// `//sp/cse/Sx`).
    pub absolute: Vec<String>,
}

impl Principal {
    /// An AE of this CSE, by AE-ID stem.
    pub fn ae(stem: &str, domain: &Domain) -> Self {
        let mut absolute = vec![format!("//{}/{}/{stem}", domain.sp_id, domain.cse_id)];
        if stem.starts_with('S') {
            absolute.insert(0, format!("//{}/{stem}", domain.sp_id));
        }
        Self {
            id: stem.to_owned(),
            absolute,
        }
    }

    /// A CSE, or an entity behind one, by its SP-relative (`/id-mn/Cx`) or absolute ID. A
    /// CSE-ID that starts with `S` would have the absolute form of the S-AE of that name
    /// (`//sp/Sx`), so it gets no absolute form at all: no ID entry in `acor` can admit it
    /// (the originator check never lets one through; this keeps the namespaces apart here
    /// too).
    pub fn remote(id: &str, domain: &Domain) -> Self {
        let absolute = if id.starts_with("//") {
            id.to_owned()
        } else {
            format!("//{}/{}", domain.sp_id, id.trim_start_matches('/'))
        };
        let cse_id = absolute[2..].split('/').nth(1).unwrap_or("");
        Self {
            id: id.to_owned(),
            absolute: if cse_id.starts_with(['S', 's']) {
                Vec::new()
            } else {
                vec![absolute]
            },
        }
    }

    /// The M2M SP domain of the originator.
    pub fn sp(&self) -> &str {
        self.absolute
            .first()
            .and_then(|a| a.strip_prefix("//"))
            .map_or("", |a| a.split('/').next().unwrap_or(""))
    }
}

/// One `accessControlRule`, ready to decide with.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRule {
    /// `acor` entries as written, each with its classification.
    pub originators: Vec<(String, OriginatorEntry)>,
    /// `acop` bit mask.
    pub operations: u8,
    /// `acco`: any one must hold; none means always.
    pub contexts: Vec<AccessContext>,
    /// `acaf`.
    pub authentication: bool,
    /// `acod`: for CREATE, any one must allow it; none means anything.
    pub object_details: Vec<ObjectDetails>,
}

/// A stored rule as compiled: usable, or why not. A rule that cannot be read never grants
/// anything (fail closed), and the explainer says why.
pub type CompiledRule = Result<AccessRule, String>;

/// The rules of one ACP's `pv` or `pvs`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The ACP's resource ID.
    pub ri: String,
    /// Which of its rule sets this is.
    pub set: RuleSet,
    /// Its rules in order (index + 1 is the rule number the explainer shows).
    pub rules: Vec<CompiledRule>,
}

impl Policy {
    /// Compiles an `m2m:setOfAcrs` (absent or malformed: no rules, so nothing is granted).
    pub fn compile(ri: &str, set: RuleSet, acrs: Option<&Value>, domain: &Domain) -> Self {
        let rules = match acrs.map(acp::rules_of) {
            Some(Ok(rules)) => rules.iter().map(|r| compile_rule(r, domain)).collect(),
            Some(Err(why)) => vec![Err(format!("{} unreadable: {why}", set.attribute()))],
            None => Vec::new(),
        };
        Self {
            ri: ri.to_owned(),
            set,
            rules,
        }
    }
}

fn compile_rule(v: &Value, domain: &Domain) -> CompiledRule {
    let rule = acp::parse_rule(v)?;
    Ok(AccessRule {
        originators: rule
            .originators
            .into_iter()
            .map(|o| {
                let class = OriginatorEntry::classify(&o, domain);
                (o, class)
            })
            .collect(),
        operations: rule.operations,
        contexts: rule.contexts,
        authentication: rule.authentication,
        object_details: rule.object_details,
    })
}

impl fmt::Display for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.attribute())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain::of(&CseConfig::default())
    }

    #[test]
    fn entries_are_classified_once() {
        let d = domain();
        let c = |e: &str| OriginatorEntry::classify(e, &d);
        assert_eq!(c("all"), OriginatorEntry::All);
        assert_eq!(
            c("//secure-cse.example"),
            OriginatorEntry::SpDomain("secure-cse.example".into())
        );
        assert_eq!(
            c("Cabc"),
            OriginatorEntry::Id("//secure-cse.example/id-in/Cabc".into())
        );
        assert_eq!(
            c("C*"),
            OriginatorEntry::Pattern("//secure-cse.example/id-in/C*".into())
        );
        assert_eq!(
            c("S*"),
            OriginatorEntry::Pattern("//secure-cse.example/S*".into())
        );
        assert_eq!(
            c("/id-in/C*"),
            OriginatorEntry::Pattern("//secure-cse.example/id-in/C*".into())
        );
        assert_eq!(
            c("/id-mn/Cx"),
            OriginatorEntry::Id("//secure-cse.example/id-mn/Cx".into())
        );
        assert_eq!(
            c("//*/id-in/C*"),
            OriginatorEntry::Pattern("//*/id-in/C*".into())
        );
        // Addresses of resources on this CSE, resource IDs and role names are names.
        for named in [
            "/id-in/cse-in/owner/g",
            "//secure-cse.example/id-in/cse-in/g",
            "grp0abc",
            "cse-in/owner/g",
            "operators@sp",
            "*",
        ] {
            assert_eq!(c(named), OriginatorEntry::Named(named.into()), "{named}");
        }
    }

    #[test]
    fn principals_have_absolute_forms() {
        let d = domain();
        assert_eq!(
            Principal::ae("Cx", &d).absolute,
            vec!["//secure-cse.example/id-in/Cx"]
        );
        assert_eq!(
            Principal::ae("Sx", &d).absolute,
            vec!["//secure-cse.example/Sx", "//secure-cse.example/id-in/Sx"]
        );
        let remote = Principal::remote("/id-mn/Cy", &d);
        assert_eq!(remote.absolute, vec!["//secure-cse.example/id-mn/Cy"]);
        assert_eq!(remote.sp(), "secure-cse.example");
        // A "CSE" named like an S-AE is never matched as that AE (or as anything by ID).
        for s_shaped in ["/Sx", "//secure-cse.example/Sx", "/Sx/Cy"] {
            let remote = Principal::remote(s_shaped, &d);
            assert!(remote.absolute.is_empty(), "{s_shaped}");
            assert_eq!(remote.sp(), "");
        }
    }

    #[test]
    fn broken_rules_compile_to_their_reason() {
        let p = Policy::compile(
            "acp1",
            RuleSet::Privileges,
            Some(
                &serde_json::json!({"acr": [{"acor": ["all"], "acop": 2}, {"acor": ["all"], "acop": 99}]}),
            ),
            &domain(),
        );
        assert!(p.rules[0].is_ok());
        assert!(p.rules[1].as_ref().is_err_and(|e| e.contains("acop")));
        let none = Policy::compile("acp1", RuleSet::Privileges, None, &domain());
        assert!(none.rules.is_empty());
        let junk = Policy::compile(
            "acp1",
            RuleSet::Privileges,
            Some(&serde_json::json!(7)),
            &domain(),
        );
        assert!(junk.rules[0].is_err());
    }
}
