//! Group management CSF: a request to `<group>/fopt[/path]` is sent to every member (plus
//! path) and the answers come back aggregated (`m2m:agr`).

use crate::{Caller, Cse};
use model::{
    AccessOperation, ContentStatus, Error, Operation, Request, Resource, Response,
    ResponseStatusCode, Result,
};
use serde_json::{json, Value};

fn access_bit(req: &Request) -> AccessOperation {
    match req.op {
        Operation::Create => AccessOperation::CREATE,
        Operation::Retrieve if req.is_discovery() => AccessOperation::DISCOVERY,
        Operation::Retrieve => AccessOperation::RETRIEVE,
        Operation::Update => AccessOperation::UPDATE,
        Operation::Delete => AccessOperation::DELETE,
        Operation::Notify => AccessOperation::NOTIFY,
    }
}

impl Cse {
    pub(crate) async fn fan_out(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        group: Resource,
        suffix: &str,
    ) -> Result<Response> {
        if suffix.split('/').any(|s| s == "fopt") {
            return Err(Error::bad_request("nested fan-out is not allowed"));
        }
        // The group's macp governs its fan-out point (its own policies when macp is unset);
        // every member request is then checked on its own.
        self.gate().authorize(
            &caller.originator,
            &self.request_context(caller),
            &group,
            access_bit(req),
            req.ty,
            crate::access::Check::FanOut,
        )?;
        let members = group.str_list("mid");
        if members.is_empty() {
            return Err(Error::new(
                ResponseStatusCode::NoMembers,
                "the group has no members",
            ));
        }
        // Each member's answer embeds its content while the combined response stays within
        // `result_max_bytes`; past that, members still get the request but their entries
        // carry only the status, and the response is marked partial.
        let mut budget = self.config.result_max_bytes;
        let mut cut = false;
        let mut answers = Vec::with_capacity(members.len());
        for member in members {
            let mut sub = req.clone();
            sub.to = if suffix.is_empty() {
                member.clone()
            } else {
                format!("{member}/{suffix}")
            };
            sub.rqi = model::id::random_token(12);
            let resp = match self.process(caller.ctx, sub).await {
                Ok(r) => r.settle().await,
                Err(e) => Response::error(&e, ""),
            };
            let mut rsp = json!({ "rsc": resp.rsc.code(), "rqi": req.rqi, "to": member, "fr": format!("/{}", self.config.cse_id) });
            if let (Some(pc), Some(obj)) = (resp.pc, rsp.as_object_mut()) {
                let size = serde_json::to_vec(&pc).map_or(u64::MAX, |v| v.len() as u64);
                if size <= budget {
                    budget -= size;
                    obj.insert("pc".into(), pc);
                } else {
                    cut = true;
                }
            }
            answers.push(rsp);
        }
        let mut resp = Response::new(
            ResponseStatusCode::Ok,
            &req.rqi,
            Some(json!({ "m2m:agr": { "m2m:rsp": Value::Array(answers) } })),
        );
        if cut {
            resp.cnst = Some(ContentStatus::Partial);
        }
        Ok(resp)
    }
}
