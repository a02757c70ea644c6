//! `<request>` (ty 17, TS-0004 clauses 7.3.2.2 and 7.4.12; TS-0001 clause 9.6.12): the
//! context and the result of one non-blocking request. The CSE creates it when it accepts
//! the request and fills in the result when the operation is done; nobody creates or
//! changes it through the API, so every attribute is read-only.

use crate::attributes::{attr, Attr, Kind, Presence::NotPresent as NP};
use crate::primitive::{Request, Response};
use crate::rsc::ResponseStatusCode;
use serde_json::{json, Map, Value};

/// Attribute table (TS-0004 table 7.4.12.1-3, short names of table 8.2.3-5): all set by
/// the CSE. `acpi` and `daci`, which the table lets an UPDATE set, are not hosted: a
/// `<request>` is governed by the default policy of its creator, the originator.
pub const ATTRIBUTES: &[Attr] = &[
    attr("op", Kind::Int, NP, NP),
    attr("tg", Kind::Str, NP, NP),
    attr("org", Kind::Str, NP, NP),
    attr("rid", Kind::Str, NP, NP),
    attr("mi", Kind::Object, NP, NP),
    attr("pc", Kind::Any, NP, NP),
    attr("rs", Kind::Int, NP, NP),
    attr("ors", Kind::Object, NP, NP),
];

/// The content of the acknowledgement of a non-blocking request: the reference to its
/// `<request>` (TS-0004 table 7.3.2.3-1), as `m2m:uri`.
pub fn acknowledgement(ri: &str) -> Value {
    json!({ "m2m:uri": ri })
}

/// `m2m:requestStatus` (TS-0004 table 6.3.4.2.10-1), the values this CSE (a hosting CSE,
/// never a transit one) sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// 1: the operation was carried out; its response, success or not, is in `ors`.
    Completed,
    /// 2: the operation was not carried out (its result expiration passed before it could
    /// run, or the CSE restarted while it was pending); why is in `ors`.
    Failed,
    /// 3: accepted, not carried out yet.
    Pending,
}

impl RequestStatus {
    /// The wire number.
    pub fn code(self) -> u8 {
        match self {
            Self::Completed => 1,
            Self::Failed => 2,
            Self::Pending => 3,
        }
    }
}

/// `m2m:metaInformation` (TS-0004 table 6.3.5.4-1) of a non-blocking request: its optional
/// parameters, short names. Tokens are left out: a bearer credential is not kept at rest.
pub fn meta_information(req: &Request) -> Value {
    let mut mi = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            mi.insert(k.to_owned(), v);
        }
    };
    put("ty", req.ty.map(|t| json!(t.code())));
    put("ot", req.ot.as_ref().map(|v| json!(v)));
    put("rqet", req.rqet.as_ref().map(|v| json!(v)));
    put("rset", req.rset.as_ref().map(|v| json!(v)));
    put("oet", req.oet.as_ref().map(|v| json!(v)));
    put(
        "rt",
        req.rt.map(|rtv| {
            let mut rt = Map::new();
            rt.insert("rtv".into(), json!(rtv));
            if let Some(nu) = &req.rtu {
                rt.insert("nu".into(), json!(nu));
            }
            Value::Object(rt)
        }),
    );
    put("rp", req.rp.as_ref().map(|v| json!(v)));
    put("rcn", req.rcn.map(|r| json!(r.code())));
    put("ec", req.ec.map(|v| json!(v)));
    put("drt", req.drt.map(|v| json!(v)));
    put(
        "rids",
        (!req.rids.is_empty()).then(|| json!(req.rids.clone())),
    );
    put("rvi", req.rvi.as_ref().map(|v| json!(v)));
    put("vsi", req.vsi.as_ref().map(|v| json!(v)));
    Value::Object(mi)
}

/// Where the result of an asynchronous request goes, as its `<request>` recorded it
/// (`mi/rt/nu`): `None` when the request named no targets (the originator is notified),
/// otherwise the targets, possibly none at all (TS-0004 clause 7.5.1.2.5).
pub fn notification_targets(req: &Map<String, Value>) -> Option<Vec<String>> {
    let nu = req.get("mi")?.get("rt")?.get("nu")?.as_array()?;
    Some(
        nu.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// The response type the `<request>` recorded (`mi/rt/rtv`).
pub fn response_type(req: &Map<String, Value>) -> Option<u64> {
    req.get("mi")?.get("rt")?.get("rtv")?.as_u64()
}

/// `m2m:operationResult` (TS-0004 table 6.3.5.32-1) for `resp`: the response primitive of
/// the operation, short names; `to` is the originator it answers, `fr` the CSE.
pub fn operation_result(resp: &Response, to: &str, fr: &str, ot: &str) -> Value {
    let mut ors = Map::new();
    ors.insert("rsc".into(), json!(resp.rsc.code()));
    ors.insert("rqi".into(), json!(resp.rqi));
    if let Some(pc) = &resp.pc {
        ors.insert("pc".into(), pc.clone());
    }
    ors.insert("to".into(), json!(to));
    ors.insert("fr".into(), json!(fr));
    ors.insert("ot".into(), json!(ot));
    if let Some(cnst) = resp.cnst {
        ors.insert("cnst".into(), json!(cnst.code()));
    }
    if let Some(cnot) = resp.cnot {
        ors.insert("cnot".into(), json!(cnot));
    }
    Value::Object(ors)
}

/// The `operationResult` of a request just accepted: the acknowledgement's status and the
/// request's identifier (TS-0004 table 7.3.2.2-2).
pub fn accepted_result(rsc: ResponseStatusCode, rqi: &str) -> Value {
    json!({ "rsc": rsc.code(), "rqi": rqi })
}

/// The content of the notification that carries the result of an asynchronous request:
/// the response as `m2m:responsePrimitive` (TS-0004 clause 7.5.1.2.5 d).
pub fn result_notification(ors: &Value) -> Value {
    json!({ "m2m:rsp": ors })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Operation, ResourceType};

    #[test]
    fn the_meta_information_keeps_the_optional_parameters_but_not_tokens() {
        let mut req = Request::new(Operation::Create, "cse-in", Some("Cae".into()));
        req.ty = Some(ResourceType::Container);
        req.rt = Some(2);
        req.rtu = Some(vec!["http://h/n".into()]);
        req.rp = Some("PT1H".into());
        req.oet = Some("1000".into());
        req.tkns = vec!["secret.jwt.value".into()];
        let mi = meta_information(&req);
        assert_eq!(
            mi,
            json!({"ty": 3, "oet": "1000", "rt": {"rtv": 2, "nu": ["http://h/n"]},
                "rp": "PT1H", "rvi": "3"})
        );
        let attrs = json!({ "mi": mi });
        let attrs = attrs.as_object().cloned().unwrap_or_default();
        assert_eq!(
            notification_targets(&attrs),
            Some(vec!["http://h/n".to_owned()])
        );
        assert_eq!(response_type(&attrs), Some(2));
        req.rtu = None;
        let attrs = json!({ "mi": meta_information(&req) });
        let attrs = attrs.as_object().cloned().unwrap_or_default();
        assert_eq!(notification_targets(&attrs), None);
    }

    #[test]
    fn an_operation_result_is_the_response_primitive() {
        let resp = Response::new(
            ResponseStatusCode::Created,
            "r1",
            Some(json!({"m2m:cnt": {"rn": "x"}})),
        );
        let ors = operation_result(&resp, "Cae", "/id-in", "20261207T120000");
        assert_eq!(
            ors,
            json!({"rsc": 2001, "rqi": "r1", "pc": {"m2m:cnt": {"rn": "x"}}, "to": "Cae",
                "fr": "/id-in", "ot": "20261207T120000"})
        );
        assert_eq!(result_notification(&ors)["m2m:rsp"]["rsc"], json!(2001));
        assert_eq!(RequestStatus::Pending.code(), 3);
    }
}
