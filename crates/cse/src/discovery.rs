//! Discovery (RETRIEVE with `fu=1`): the resources below the target that match the filter
//! criteria and that the originator may discover.
//!
//! Each result passes its own DISCOVER decision before it counts toward `ofst` and `lim`
//! (TS-0001 clause 10.2.6). Discovery returns addresses only (`rcn` 11 or 6); a filter on an
//! attribute's value (clause 7.3.3.17.9) also needs RETRIEVE on each result. Results are read
//! one page at a time ([`crate::page`]).
//!
//! The request's verified tokens count for the target and for every result, as for any other
//! operation; a DAS is not consulted (one consultation per candidate would be a scan of the DAS).

use crate::addressing::Target;
use crate::content::child_ref;
use crate::page::{self, Bounds, Shape};
use crate::relatives::Kin;
use crate::{addressing, real_target, Caller, Cse};
use model::filter::RelativePath;
use model::{
    AccessOperation, Error, Request, Resource, Response, ResponseStatusCode, Result, ResultContent,
};
use serde_json::json;
use store::Scope;

impl Cse {
    pub(crate) fn discover(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let root = real_target(target)?;
        self.authorize(caller, &root, AccessOperation::DISCOVERY, None)?;
        // Addresses only: the other result contents are refused before (TS-0001 table
        // 8.1.2-1), so DISCOVER is the one decision each result needs.
        let rcn = req.rcn.unwrap_or(ResultContent::DiscoveryResultReferences);
        let shape = Shape::References;
        // A condition on an attribute's value reads that value: only a resource the
        // originator may also RETRIEVE is tested on it, so discovery is no oracle for
        // attributes hidden from it (clause 7.3.3.17.9 leaves the rights unsaid).
        let reads_values = req.fc.has_attribute_conditions();
        let gate = self.gate().with_tokens(&caller.tokens, &caller.rids);
        let facts = self.request_context(caller);
        let bounds = Bounds {
            offset: req.fc.ofst.unwrap_or(0),
            lim: req.fc.lim.filter(|l| *l <= self.config.discovery_limit),
            max_resources: self.config.discovery_limit,
            max_bytes: self.config.result_max_bytes,
            shape,
        };
        let scope = Scope::Descendants {
            srn: &root.srn,
            max_depth: req.fc.lvl,
        };
        let mut may_read =
            |r: &Resource| gate.permits(&caller.originator, &facts, r, AccessOperation::RETRIEVE);
        let mut kin = Kin::new(self.store.as_ref(), &mut may_read, caller.tokens.is_empty());
        let page = page::collect(
            self.store.as_ref(),
            &page::scan(scope, &req.fc),
            &req.fc,
            bounds,
            page::Admission {
                admit: &mut |r| {
                    let who = &caller.originator;
                    gate.permits(who, &facts, r, AccessOperation::DISCOVERY)
                        && (!reads_values
                            || gate.permits(who, &facts, r, AccessOperation::RETRIEVE))
                },
                by_parent: caller.tokens.is_empty(),
            },
            &mut kin,
        )?;
        let found = match &req.fc.arp {
            Some(path) => self.apply_relative_path(path, &page.found, &mut |r| {
                gate.permits(&caller.originator, &facts, r, AccessOperation::DISCOVERY)
            })?,
            None => page.found.clone(),
        };
        let found = &found;
        let pc = if rcn == ResultContent::ChildResourceReferences {
            let refs: Vec<_> = found.iter().map(child_ref).collect();
            json!({ "m2m:rrl": { "rrf": refs } })
        } else {
            let unstructured = req.drt == Some(2);
            let uris: Vec<&str> = found
                .iter()
                .map(|r| if unstructured { r.ri() } else { r.srn.as_str() })
                .collect();
            json!({ "m2m:uril": uris })
        };
        let mut resp = Response::new(ResponseStatusCode::Ok, &req.rqi, Some(pc));
        page.mark(&mut resp);
        Ok(resp)
    }

    /// The resources at `path` from each matched resource (clause 7.3.3.17.17), in the
    /// order of the matches and each once. A path that reaches no resource (or climbs above
    /// the `<CSEBase>`, or names `la`/`ol` of an empty container) adds nothing, as does a
    /// resource the originator may not discover: the path must not reveal what discovery
    /// would hide. `lim` and `ofst` counted the matches, before the path.
    fn apply_relative_path(
        &self,
        path: &RelativePath,
        matched: &[Resource],
        may_discover: &mut dyn FnMut(&Resource) -> bool,
    ) -> Result<Vec<Resource>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for r in matched {
            let Some(to) = path.apply(&r.srn) else {
                continue;
            };
            let reached = match addressing::resolve(&to, &self.config, self.store.as_ref()) {
                Ok(addressing::Target::Resource(r)) => r,
                Ok(addressing::Target::Edge {
                    instance: Some(r), ..
                }) => r,
                Ok(_) => continue,
                Err(Error {
                    rsc: ResponseStatusCode::NotFound | ResponseStatusCode::BadRequest,
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            if may_discover(&reached) && seen.insert(reached.ri().to_owned()) {
                out.push(reached);
            }
        }
        Ok(out)
    }
}
