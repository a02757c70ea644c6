//! RETRIEVE, including partial retrieve (`atrl`) and the child-related result contents.
//!
//! Every child a result embeds or references passes its own RETRIEVE decision (TS-0001
//! clause 8.1.2): being allowed to read a parent says nothing about its children (an
//! `<AE>` under the `<CSEBase>`, an `<acp>` governed by its own `pvs`, a `<sub>` whose
//! `nu` names someone's endpoint). Children are read one page at a time ([`crate::page`]).

use crate::addressing::Target;
use crate::content::{child_ref, embed, representation};
use crate::page::{self, Bounds, Shape};
use crate::relatives::Kin;
use crate::resources;
use crate::subscription::Event;
use crate::{real_target, Caller, Cse};
use model::{
    time, AccessOperation, Request, Resource, ResourceType, Response, ResponseStatusCode, Result,
    ResultContent,
};
use serde_json::{json, Value};
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
            resources::cnt::check_retrievable(container)?;
        }
        let r = real_target(target)?;
        self.authorize_dynamic(caller, &r, AccessOperation::RETRIEVE, None)
            .await?;
        resources::cnt::check_instance_retrievable(self.store.as_ref(), &r)?;
        let rcn = req.rcn.unwrap_or(ResultContent::Attributes);
        if rcn == ResultContent::Attributes && req.atrl.is_empty() {
            return Ok(Response::new(
                ResponseStatusCode::Ok,
                &req.rqi,
                Some(r.into_wrapped()),
            ));
        }
        if !rcn.is_child_related() {
            return Ok(Response::new(
                ResponseStatusCode::Ok,
                &req.rqi,
                Some(representation(&r, &req.atrl)?),
            ));
        }
        let (pc, page) = self.child_content(caller, req, &r, rcn)?;
        self.tell_if_empty(&r, rcn).await?;
        let mut resp = Response::new(ResponseStatusCode::Ok, &req.rqi, Some(pc));
        page.mark(&mut resp);
        Ok(resp)
    }

    /// `net` 5 (TS-0004 table 6.3.4.2.19-1): a RETRIEVE of a `<container>` asking for
    /// its children (`rcn` 4 or 8) while it holds no content instance (none, or only
    /// expired ones) notifies the container's subscribers.
    async fn tell_if_empty(&self, r: &Resource, rcn: ResultContent) -> Result<()> {
        let asks_children = matches!(
            rcn,
            ResultContent::AttributesAndChildResources | ResultContent::ChildResources
        );
        if r.ty != ResourceType::Container || !asks_children {
            return Ok(());
        }
        let now = self.config.clock.now();
        let live = self
            .store
            .newest_child(r.ri(), ResourceType::ContentInstance)?
            .is_some_and(|cin| {
                cin.attrs
                    .get("et")
                    .and_then(Value::as_str)
                    .and_then(|et| time::parse(et).ok())
                    .is_none_or(|et| et > now)
            });
        if !live {
            self.fire(r, Event::RetrievedEmpty(r)).await;
        }
        Ok(())
    }

    /// The content of a child-related result (`rcn` 4, 5, 6, 8, for RETRIEVE and DELETE):
    /// the children of `r` and their descendants down to `lvl`, filtered by `fc`, one page
    /// of them (TS-0001 clause 8.1.2).
    pub(crate) fn child_content(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        r: &Resource,
        rcn: ResultContent,
    ) -> Result<(Value, page::Page)> {
        let shape = match rcn {
            ResultContent::AttributesAndChildResources | ResultContent::ChildResources => {
                Shape::Representations
            }
            _ => Shape::References,
        };
        let page = self.readable_descendants(caller, req, r, shape)?;
        let pc = match rcn {
            ResultContent::AttributesAndChildResources => {
                embed(representation(r, &req.atrl)?, r, &page.found)
            }
            ResultContent::ChildResources => embed(json!({ r.wrapper(): {} }), r, &page.found),
            ResultContent::AttributesAndChildResourceReferences => {
                let mut rep = representation(r, &req.atrl)?;
                let refs: Vec<_> = page.found.iter().map(child_ref).collect();
                if let Some(obj) = rep.get_mut(r.wrapper()).and_then(|v| v.as_object_mut()) {
                    obj.insert("ch".into(), json!(refs));
                }
                rep
            }
            _ => {
                let refs: Vec<_> = page.found.iter().map(child_ref).collect();
                json!({ "m2m:rrl": { "rrf": refs } })
            }
        };
        Ok((pc, page))
    }

    /// The descendants of `parent` (down to `lvl`) that match the request's filter criteria
    /// and that the originator may RETRIEVE, one page of them, parents before children.
    fn readable_descendants(
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
        let scope = Scope::Descendants {
            srn: &parent.srn,
            max_depth: req.fc.lvl,
        };
        let mut may_read =
            |r: &Resource| gate.permits(&caller.originator, &facts, r, AccessOperation::RETRIEVE);
        let mut kin = Kin::new(self.store.as_ref(), &mut may_read, caller.tokens.is_empty());
        page::collect(
            self.store.as_ref(),
            &page::scan(scope, &req.fc),
            &req.fc,
            bounds,
            page::Admission {
                admit: &mut |child| {
                    gate.permits(&caller.originator, &facts, child, AccessOperation::RETRIEVE)
                },
                by_parent: caller.tokens.is_empty(),
            },
            &mut kin,
        )
    }
}
