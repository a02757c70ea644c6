//! Lifetimes within lifetimes: a resource never outlives its parent. TS-0004 clause 7.3.3.3
//! has the CSE set a child's `et` no later than its parent's (whatever the originator asked
//! for, or the default lifetime), and clause 7.3.3.4 refuses to shorten a parent's `et`
//! below one of its children's. Both are applied inside the write, against the state the
//! write sees, so that a concurrent CREATE and UPDATE cannot leave a child outliving its
//! parent between them.

use model::{time, Error, Resource, Result};
use serde_json::{json, Value};

/// Sets `child`'s `et` to `parent`'s when it is later (a `<CSEBase>`, having no `et`, limits
/// nothing). A stored value that does not parse limits nothing either: the expiry sweep
/// would never act on it.
pub(crate) fn within_parent(child: &mut Resource, parent: &Resource) {
    let Some((limit, text)) = parent.et().and_then(|s| Some((time::parse(s).ok()?, s))) else {
        return;
    };
    let later = child
        .et()
        .and_then(|s| time::parse(s).ok())
        .is_some_and(|et| et > limit);
    if later {
        let text: Value = json!(text);
        child.attrs.insert("et".into(), text);
    }
}

/// Refuses (4000) an UPDATE that makes `updated`'s `et` earlier than it was (`before`) while
/// one of its children expires after the new value (TS-0004 clause 7.3.3.4).
pub(crate) fn check_children(
    t: &mut dyn store::Txn,
    before: &Resource,
    updated: &Resource,
) -> Result<()> {
    let parse = |r: &Resource| r.et().and_then(|s| time::parse(s).ok());
    let Some(new) = parse(updated) else {
        return Ok(());
    };
    let shorter = parse(before).is_none_or(|old| new < old);
    if shorter && t.child_expires_after(updated.ri(), new)? {
        return Err(Error::bad_request(format!(
            "expiration time {} is earlier than a child's: a resource cannot expire before \
             its children",
            updated.et().unwrap_or_default()
        )));
    }
    Ok(())
}
