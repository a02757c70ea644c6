//! Discovery (RETRIEVE with `fu=1`): the resources below the target that match the filter
//! criteria and that the originator may discover.
//!
//! The request's verified tokens count for the target and for every result, as for any other
//! operation; a DAS is not consulted (one consultation per candidate would be a scan of the DAS).

use crate::addressing::Target;
use crate::content::embed;
use crate::{real_target, Caller, Cse};
use model::{AccessOperation, Request, Response, ResponseStatusCode, Result, ResultContent};
use serde_json::json;

impl Cse {
    pub(crate) fn discover(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let root = real_target(target)?;
        self.authorize(caller, &root, AccessOperation::DISCOVERY, None)?;
        let limit = req
            .fc
            .lim
            .unwrap_or(self.config.discovery_limit)
            .min(self.config.discovery_limit) as usize;
        let skip = req.fc.ofst.unwrap_or(0) as usize;
        let gate = self.gate().with_tokens(&caller.tokens, &caller.rids);
        let facts = self.request_context(caller);
        let found: Vec<_> = self
            .store
            .descendants(&root.srn, req.fc.lvl)?
            .into_iter()
            .filter(|r| req.fc.matches(r.ty, &r.attrs))
            .filter(|r| gate.permits(&caller.originator, &facts, r, AccessOperation::DISCOVERY))
            .skip(skip)
            .take(limit)
            .collect();
        let pc = match req.rcn.unwrap_or(ResultContent::DiscoveryResultReferences) {
            ResultContent::DiscoveryResultReferences => {
                let unstructured = req.drt == Some(2);
                let uris: Vec<&str> = found
                    .iter()
                    .map(|r| if unstructured { r.ri() } else { r.srn.as_str() })
                    .collect();
                json!({ "m2m:uril": uris })
            }
            ResultContent::ChildResourceReferences => {
                let refs: Vec<_> = found.iter().map(crate::content::child_ref).collect();
                json!({ "m2m:rrl": { "rrf": refs } })
            }
            ResultContent::ChildResources => embed(json!({ root.ty.wrapper(): {} }), &found),
            _ => embed(crate::content::representation(&root, &req.atrl)?, &found),
        };
        Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, Some(pc)))
    }
}
