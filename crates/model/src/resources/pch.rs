//! `<pollingChannel>` (ty 15) and its virtual child `<pollingChannelURI>` (`pcu`), TS-0004
//! clauses 7.4.21 and 7.4.22: what crosses the channel. A request queued for a
//! request-unreachable AE goes out as the content of a long-poll answer, `m2m:rqp`
//! (`m2m:requestPrimitive`, TS-0004 clause 7.2.1.2 case 9 and table 8.2.3-2); the AE's
//! answer to it comes back as the content of a NOTIFY to `pcu`, `m2m:rsp`
//! (`m2m:responsePrimitive`, clause 7.5.1.2.7).

use crate::attributes::Attr;
use crate::error::{Error, Result};
use crate::primitive::Request;
use crate::rsc::ResponseStatusCode;
use serde_json::{json, Map, Value};

/// Attribute table: the universal and common attributes only (TS-0004 table 7.4.21.1-2);
/// a `<pollingChannel>` has no `acpi` of its own.
pub const ATTRIBUTES: &[Attr] = &[];

/// The name of the virtual child on which the owner long-polls (TS-0004 table 7.4.21.1-3).
pub const PCU: &str = "pcu";

/// The content key of a request primitive carried as content.
pub const REQUEST_PRIMITIVE: &str = "m2m:rqp";
/// The content key of a response primitive carried as content.
pub const RESPONSE_PRIMITIVE: &str = "m2m:rsp";

/// `req` as the members of an `m2m:requestPrimitive` (short names, TS-0004 table 8.2.2-1),
/// for the content of a long-poll answer. `to` is the address the request was for (the
/// AE); `rqet` tells the AE until when an answer is of use.
pub fn request_primitive(req: &Request, to: &str, rqet: &str) -> Value {
    let mut rqp = Map::new();
    rqp.insert("op".into(), json!(req.op.code()));
    rqp.insert("to".into(), json!(to));
    if let Some(fr) = &req.fr {
        rqp.insert("fr".into(), json!(fr));
    }
    rqp.insert("rqi".into(), json!(req.rqi));
    if let Some(rvi) = &req.rvi {
        rqp.insert("rvi".into(), json!(rvi));
    }
    if let Some(ty) = req.ty {
        rqp.insert("ty".into(), json!(ty.code()));
    }
    if let Some(pc) = &req.pc {
        rqp.insert("pc".into(), pc.clone());
    }
    if let Some(ot) = &req.ot {
        rqp.insert("ot".into(), json!(ot));
    }
    rqp.insert("rqet".into(), json!(rqet));
    Value::Object(rqp)
}

/// The parts of an `m2m:responsePrimitive` the hosting CSE reads from a NOTIFY to `pcu`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePrimitive {
    /// The status the AE answered with.
    pub rsc: ResponseStatusCode,
    /// The Request Identifier of the request it answers: the correlation key (TS-0001
    /// clause 10.2.5.19).
    pub rqi: String,
    /// The content of the answer, if any.
    pub pc: Option<Value>,
}

/// The members a response primitive may carry (TS-0004 table 8.2.2-1, response side).
const RESPONSE_MEMBERS: &[&str] = &[
    "rsc", "rqi", "pc", "to", "fr", "ot", "rset", "ec", "cnst", "cnot", "rvi", "vsi",
];

impl ResponsePrimitive {
    /// Reads the content of a NOTIFY to `pcu`: exactly `{"m2m:rsp": {...}}` with `rsc` a
    /// status code this CSE knows and `rqi` a non-empty string; anything else is 4000.
    pub fn from_content(pc: Option<&Value>) -> Result<Self> {
        let obj = pc
            .and_then(Value::as_object)
            .ok_or_else(|| Error::bad_request("the content must be an m2m:rsp"))?;
        let rsp = match (obj.len(), obj.get(RESPONSE_PRIMITIVE)) {
            (1, Some(Value::Object(rsp))) => rsp,
            (1, Some(_)) => return Err(Error::bad_request("m2m:rsp must be an object")),
            _ => {
                return Err(Error::bad_request(
                    "the content must hold exactly one m2m:rsp",
                ))
            }
        };
        if let Some(other) = rsp.keys().find(|k| !RESPONSE_MEMBERS.contains(&k.as_str())) {
            return Err(Error::bad_request(format!(
                "unknown member '{other}' in m2m:rsp"
            )));
        }
        let rsc = rsp
            .get("rsc")
            .ok_or_else(|| Error::bad_request("m2m:rsp needs rsc"))?
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .and_then(ResponseStatusCode::from_code)
            .ok_or_else(|| Error::bad_request("m2m:rsp: rsc is not a known status code"))?;
        let rqi = match rsp.get("rqi") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => {
                return Err(Error::bad_request(
                    "m2m:rsp: rqi must be a non-empty string",
                ))
            }
            None => return Err(Error::bad_request("m2m:rsp needs rqi")),
        };
        Ok(Self {
            rsc,
            rqi,
            pc: rsp.get("pc").cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Operation;

    #[test]
    fn a_notification_becomes_a_request_primitive() {
        let mut req = Request::new(Operation::Notify, "", Some("/id-in".into()));
        req.rqi = "r1".into();
        req.pc = Some(json!({"m2m:sgn": {"sur": "x"}}));
        let rqp = request_primitive(&req, "Cae", "20261207T120000");
        assert_eq!(
            rqp,
            json!({"op": 5, "to": "Cae", "fr": "/id-in", "rqi": "r1", "rvi": "3",
                "pc": {"m2m:sgn": {"sur": "x"}}, "rqet": "20261207T120000"})
        );
    }

    #[test]
    fn response_primitives_are_read_strictly() {
        let ok =
            ResponsePrimitive::from_content(Some(&json!({"m2m:rsp": {"rsc": 2000, "rqi": "r1"}})));
        assert_eq!(
            ok.ok(),
            Some(ResponsePrimitive {
                rsc: ResponseStatusCode::Ok,
                rqi: "r1".into(),
                pc: None
            })
        );
        for bad in [
            json!({"m2m:rsp": {"rqi": "r1"}}),
            json!({"m2m:rsp": {"rsc": 2000}}),
            json!({"m2m:rsp": {"rsc": 2000, "rqi": ""}}),
            json!({"m2m:rsp": {"rsc": 2000, "rqi": 7}}),
            json!({"m2m:rsp": {"rsc": 1234, "rqi": "r1"}}),
            json!({"m2m:rsp": {"rsc": "2000", "rqi": "r1"}}),
            json!({"m2m:rsp": {"rsc": 2000, "rqi": "r1", "zz": 1}}),
            json!({"m2m:rsp": [1]}),
            json!({"m2m:rsp": {"rsc": 2000, "rqi": "r1"}, "m2m:sgn": {}}),
            json!({"m2m:sgn": {}}),
            json!("text"),
        ] {
            let got = ResponsePrimitive::from_content(Some(&bad)).map_err(|e| e.rsc);
            assert_eq!(got, Err(ResponseStatusCode::BadRequest), "{bad}");
        }
        assert!(ResponsePrimitive::from_content(None).is_err());
    }
}
