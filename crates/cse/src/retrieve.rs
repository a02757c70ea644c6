//! RETRIEVE, including partial retrieve (`atrl`) and the child-related result contents.

use crate::addressing::Target;
use crate::content::{child_ref, embed, representation};
use crate::{real_target, Caller, Cse};
use model::{AccessOperation, Request, Response, ResponseStatusCode, Result, ResultContent};
use serde_json::json;

impl Cse {
    pub(crate) async fn retrieve(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let r = real_target(target)?;
        self.authorize_dynamic(caller, &r, AccessOperation::RETRIEVE, None)
            .await?;
        let rcn = req.rcn.unwrap_or(ResultContent::Attributes);
        if rcn == ResultContent::Attributes && req.atrl.is_empty() {
            return Ok(Response::new(
                ResponseStatusCode::Ok,
                &req.rqi,
                Some(r.into_wrapped()),
            ));
        }
        let children = || -> Result<Vec<model::Resource>> {
            let mut kids = self.store.children(r.ri(), None)?;
            kids.retain(|c| req.fc.matches(c.ty, &c.attrs));
            let skip = req.fc.ofst.unwrap_or(0) as usize;
            let take = req.fc.lim.unwrap_or(u64::MAX) as usize;
            Ok(kids.into_iter().skip(skip).take(take).collect())
        };
        let pc = match rcn {
            ResultContent::Attributes => representation(&r, &req.atrl)?,
            ResultContent::AttributesAndChildResources => {
                embed(representation(&r, &req.atrl)?, &children()?)
            }
            ResultContent::ChildResources => embed(json!({ r.ty.wrapper(): {} }), &children()?),
            ResultContent::AttributesAndChildResourceReferences => {
                let mut rep = representation(&r, &req.atrl)?;
                let refs: Vec<_> = children()?.iter().map(child_ref).collect();
                if let Some(obj) = rep.get_mut(r.ty.wrapper()).and_then(|v| v.as_object_mut()) {
                    obj.insert("ch".into(), json!(refs));
                }
                rep
            }
            ResultContent::ChildResourceReferences => {
                let refs: Vec<_> = children()?.iter().map(child_ref).collect();
                json!({ "m2m:rrl": { "rrf": refs } })
            }
            _ => {
                return Err(model::Error::bad_request(
                    "result content not valid for RETRIEVE",
                ))
            }
        };
        Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, Some(pc)))
    }
}
