//! Why a request was (or would be) granted or refused: which policies were considered, each
//! rule, and for each rule that it holds or which conditions fail. The admin gets it as JSON
//! (`/.admin/explain`); a refusal is logged with it on one line; the requester never sees
//! it (they get 4103 and nothing more).

use super::rule::RuleSet;
use model::AccessOperation;
use serde_json::{json, Value};
use std::fmt;

/// A condition of a rule that can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// `acor` does not admit the originator.
    Originator,
    /// `acop` lacks the operation.
    Operation,
    /// `acaf` set and the originator is not authenticated.
    Authentication,
    /// No `acco` context holds (the details name the failing parts).
    Context,
    /// `actw`: outside every time window.
    TimeWindow,
    /// `acip`: the peer's address is in no block (or unknown).
    IpAddress,
    /// `aclr`: the originator's location is outside the region (or unknown).
    Location,
    /// `scl` (secure-cse extension): the credential level is too low (or unknown).
    Level,
    /// `acod`: creating this type here is not allowed.
    ObjectDetails,
    /// The stored rule cannot be read, so it grants nothing.
    Unreadable,
}

impl Condition {
    /// A short name for logs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Originator => "originator",
            Self::Operation => "operation",
            Self::Authentication => "authentication",
            Self::Context => "context",
            Self::TimeWindow => "time-window",
            Self::IpAddress => "ip-address",
            Self::Location => "location",
            Self::Level => "credential-level",
            Self::ObjectDetails => "object-details",
            Self::Unreadable => "unreadable-rule",
        }
    }
}

/// One failing condition and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which condition.
    pub condition: Condition,
    /// What was compared, in words.
    pub detail: String,
}

impl Failure {
    /// A failure with its description.
    pub fn new(condition: Condition, detail: impl Into<String>) -> Self {
        Self {
            condition,
            detail: detail.into(),
        }
    }
}

/// One rule as evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    /// The rule's number in its `acr` list, from 1.
    pub number: usize,
    /// Whether it grants the request.
    pub holds: bool,
    /// Every condition that fails (empty when it holds).
    pub failures: Vec<Failure>,
}

/// One ACP as evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTrace {
    /// The ACP's resource ID.
    pub ri: String,
    /// `pv` or `pvs`.
    pub set: RuleSet,
    /// Its rules.
    pub rules: Vec<RuleTrace>,
}

/// What the decision was based on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// The admin originator or the CSE itself: access control does not apply.
    Privileged,
    /// The resource has no `acpi`: its creator (an AE: itself) has every privilege.
    DefaultPolicy {
        /// The resource whose default policy applied.
        owner: String,
        /// Who holds every privilege there.
        holder: String,
    },
    /// The rules of ACPs (`pv` through `acpi` or `macp`, or `pvs`).
    Policies {
        /// Where the ACP list came from: `acpi`, `macp`, `pvs` (the ACP itself) or
        /// `acpi (update)`.
        via: &'static str,
        /// Entries of that list that name no ACP (they contribute nothing).
        missing: Vec<String>,
    },
}

/// The whole answer to "why".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The originator evaluated.
    pub originator: String,
    /// The operation.
    pub op: AccessOperation,
    /// The resource whose policies governed (resource ID).
    pub target: String,
    /// Granted or not.
    pub granted: bool,
    /// What the decision was based on.
    pub basis: Basis,
    /// The policies considered, in order.
    pub policies: Vec<PolicyTrace>,
}

/// The name of an `acop` bit.
pub fn op_name(op: AccessOperation) -> &'static str {
    match op.0 {
        1 => "CREATE",
        2 => "RETRIEVE",
        4 => "UPDATE",
        8 => "DELETE",
        16 => "NOTIFY",
        32 => "DISCOVERY",
        _ => "UNKNOWN",
    }
}

impl Explanation {
    /// The JSON the admin interface returns.
    pub fn to_json(&self) -> Value {
        let basis = match &self.basis {
            Basis::Privileged => json!({ "kind": "privileged" }),
            Basis::DefaultPolicy { owner, holder } => {
                json!({ "kind": "default-policy", "owner": owner, "holder": holder })
            }
            Basis::Policies { via, missing } => {
                json!({ "kind": "policies", "via": via, "missing": missing })
            }
        };
        let policies: Vec<Value> = self
            .policies
            .iter()
            .map(|p| {
                let rules: Vec<Value> = p
                    .rules
                    .iter()
                    .map(|r| {
                        let failed: Vec<Value> = r
                            .failures
                            .iter()
                            .map(|f| json!({ "condition": f.condition.name(), "detail": f.detail }))
                            .collect();
                        json!({ "rule": r.number, "holds": r.holds, "failed": failed })
                    })
                    .collect();
                json!({ "acp": p.ri, "set": p.set.attribute(), "rules": rules })
            })
            .collect();
        json!({
            "decision": if self.granted { "granted" } else { "refused" },
            "originator": self.originator,
            "operation": op_name(self.op),
            "target": self.target,
            "basis": basis,
            "policies": policies,
        })
    }
}

/// One line for the log: `refused RETRIEVE by Cx on cnt1 via acpi: acp1/pv#1 [operation:
/// acop 1 does not include RETRIEVE] acp1/pv#2 [...]`.
impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} by {} on {}",
            if self.granted { "granted" } else { "refused" },
            op_name(self.op),
            self.originator,
            self.target
        )?;
        match &self.basis {
            Basis::Privileged => return f.write_str(": privileged originator"),
            Basis::DefaultPolicy { owner, holder } => {
                return write!(
                    f,
                    ": no acpi on {owner}, default policy grants only {holder}"
                )
            }
            Basis::Policies { via, missing } => {
                write!(f, " via {via}:")?;
                if self.policies.is_empty() {
                    f.write_str(" no policy")?;
                }
                if !missing.is_empty() {
                    write!(f, " (not ACPs: {})", missing.join(", "))?;
                }
            }
        }
        for p in &self.policies {
            if p.rules.is_empty() {
                write!(f, " {}/{} has no rules", p.ri, p.set)?;
            }
            for r in &p.rules {
                write!(f, " {}/{}#{}", p.ri, p.set, r.number)?;
                if r.holds {
                    f.write_str(" [holds]")?;
                    continue;
                }
                f.write_str(" [")?;
                for (i, fail) in r.failures.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    // Details are ours, but keep the line one line whatever they hold.
                    let detail = fail.detail.replace(['\n', '\r'], " ");
                    write!(f, "{}: {detail}", fail.condition.name())?;
                }
                f.write_str("]")?;
            }
        }
        Ok(())
    }
}
