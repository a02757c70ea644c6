//! RETRIEVE, including partial retrieve (`atrl`) and the child-related result contents.
//!
//! Every child a result embeds or references passes its own RETRIEVE decision (TS-0001
//! clause 8.1.2): being allowed to read a parent says nothing about its children (an
//! `<AE>` under the `<CSEBase>`, an `<acp>` governed by its own `pvs`, a `<sub>` whose
//! `nu` names someone's endpoint). Children are read one page at a time ([`crate::page`]).

use crate::addressing::Target;
use crate::content::{child_ref, embed, representation};
use crate::page::{self, Bounds, Shape};
use crate::{real_target, Caller, Cse};
use model::{
    AccessOperation, Request, Resource, Response, ResponseStatusCode, Result, ResultContent,
};
use serde_json::json;
use store::Scope;

impl Cse {
    pub(crate) async fn retrieve(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        if let Target::Edge {
            container,
            instance: None,
        } = &target
        {
            // Whether a container has instances is itself something only its readers learn.
            self.authorize_dynamic(caller, container, AccessOperation::RETRIEVE, None)
                .await?;
        }
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
        let shape = match rcn {
            ResultContent::AttributesAndChildResources | ResultContent::ChildResources => {
                Shape::Representations
            }
            _ => Shape::References,
        };
        let children = || self.readable_children(caller, req, &r, shape);
        let (pc, page) = match rcn {
            ResultContent::Attributes => (representation(&r, &req.atrl)?, None),
            ResultContent::AttributesAndChildResources => {
                let page = children()?;
                (
                    embed(representation(&r, &req.atrl)?, &page.found),
                    Some(page),
                )
            }
            ResultContent::ChildResources => {
                let page = children()?;
                (
                    embed(json!({ r.ty.wrapper(): {} }), &page.found),
                    Some(page),
                )
            }
            ResultContent::AttributesAndChildResourceReferences => {
                let page = children()?;
                let mut rep = representation(&r, &req.atrl)?;
                let refs: Vec<_> = page.found.iter().map(child_ref).collect();
                if let Some(obj) = rep.get_mut(r.ty.wrapper()).and_then(|v| v.as_object_mut()) {
                    obj.insert("ch".into(), json!(refs));
                }
                (rep, Some(page))
            }
            ResultContent::ChildResourceReferences => {
                let page = children()?;
                let refs: Vec<_> = page.found.iter().map(child_ref).collect();
                (json!({ "m2m:rrl": { "rrf": refs } }), Some(page))
            }
            _ => {
                return Err(model::Error::bad_request(
                    "result content not valid for RETRIEVE",
                ))
            }
        };
        let mut resp = Response::new(ResponseStatusCode::Ok, &req.rqi, Some(pc));
        if let Some(page) = page {
            page.mark(&mut resp);
        }
        Ok(resp)
    }

    /// The direct children of `parent` that match the request's filter criteria and that
    /// the originator may RETRIEVE, one page of them.
    fn readable_children(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        parent: &Resource,
        shape: Shape,
    ) -> Result<page::Page> {
        let gate = self.gate().with_tokens(&caller.tokens, &caller.rids);
        let facts = self.request_context(caller);
        let bounds = Bounds {
            offset: req.fc.ofst.unwrap_or(0),
            lim: req.fc.lim,
            max_resources: self.config.result_limit,
            max_bytes: self.config.result_max_bytes,
            shape,
        };
        page::collect(
            self.store.as_ref(),
            &page::scan(Scope::Children(parent.ri()), &req.fc),
            &req.fc,
            bounds,
            page::Admission {
                admit: &mut |child| {
                    gate.permits(&caller.originator, &facts, child, AccessOperation::RETRIEVE)
                },
                by_parent: caller.tokens.is_empty(),
            },
        )
    }
}
