//! NOTIFY addressed to a resource of this CSE: to an AE it is relayed to the AE's points of
//! access; to the CSEBase it is accepted. The access check counts the request's verified
//! tokens ([`Cse::authorize`]) but does not consult a DAS.

use crate::addressing::Target;
use crate::subscription::reachable_urls;
use crate::{real_target, Caller, Cse};
use model::{AccessOperation, Error, Request, ResourceType, Response, ResponseStatusCode, Result};
use serde_json::Value;

impl Cse {
    pub(crate) async fn notify(
        &self,
        caller: &Caller<'_>,
        req: &Request,
        target: Target,
    ) -> Result<Response> {
        let r = real_target(target)?;
        self.authorize(caller, &r, AccessOperation::NOTIFY, None)?;
        match r.ty {
            ResourceType::CseBase => {
                // TS-0004 clause 7.3.3.9.2: the CSE processes the content, which must be a
                // notification (clause 7.5.1.1); anything else is a malformed request.
                model::resources::sub::validate_notification(req.pc.as_ref())?;
                Ok(Response::new(ResponseStatusCode::Ok, &req.rqi, None))
            }
            ResourceType::Ae => {
                // Forwarded under the reachability schedule of the AE's node (TS-0004
                // clause 7.4.9.1 example 1).
                let urls = reachable_urls(self, r.ri())?;
                let to = urls.first().ok_or_else(|| {
                    Error::new(
                        ResponseStatusCode::TargetNotReachable,
                        "the AE has no reachable point of access now",
                    )
                })?;
                let body = req.pc.clone().unwrap_or(Value::Null);
                let rsc = self.notifier.send_now(to, &body).await?;
                Ok(Response::new(rsc, &req.rqi, None))
            }
            _ => Err(Error::operation_not_allowed(
                "NOTIFY is accepted by an AE or the CSEBase only",
            )),
        }
    }
}
