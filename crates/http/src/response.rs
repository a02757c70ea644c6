//! Response primitive to HTTP response (TS-0009 clauses 6.3 and 6.4).
//!
//! One deliberate difference from the letter of TS-0009 clause 6.3.3 ("the Reason-Phrase
//! shall be omitted"): hyper writes the standard reason phrase. Many HTTP parsers expect
//! one, and RFC 9112 clause 4 tells clients to ignore its content, so sending it costs no
//! oneM2M client anything while omitting it breaks some generic ones.

use crate::headers;
use crate::status::http_status;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_LOCATION, CONTENT_TYPE};
use http::StatusCode;
use http_body_util::Full;
use model::codec::{self, Format};
use model::Response;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// What the binding echoes from the request into any response to it, known before the
/// request reaches the CSE so that a rejected request is answered the same way.
#[derive(Debug, Clone)]
pub(crate) struct Echo {
    /// The request's `X-M2M-RI`, if it had a valid one.
    pub(crate) rqi: Option<String>,
    /// The request's `X-M2M-RVI`, if it had a valid one.
    pub(crate) rvi: Option<String>,
    /// The serialization negotiated from `Accept` (JSON when that failed).
    pub(crate) format: Format,
}

impl Default for Echo {
    fn default() -> Self {
        Self {
            rqi: None,
            rvi: None,
            format: Format::Json,
        }
    }
}

/// Characters escaped in `Content-Location`: what is not allowed in a header value or
/// would change the meaning of a URI reference. Non-ASCII is always escaped.
const LOCATION: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Builds the HTTP response for a response primitive.
///
/// `status` overrides the table's HTTP status for the few binding errors whose HTTP
/// meaning is more precise than their RSC (413 for an oversized body, which is RSC 4000).
pub(crate) fn to_http(
    resp: &Response,
    echo: &Echo,
    status: Option<StatusCode>,
) -> http::Response<Full<Bytes>> {
    let body = resp
        .pc
        .as_ref()
        .map(|pc| codec::encode(pc, echo.format))
        .unwrap_or_default();
    let mut out = http::Response::new(Full::new(Bytes::new()));
    *out.status_mut() = status.unwrap_or_else(|| http_status(resp.rsc));
    let h = out.headers_mut();
    h.insert(headers::RSC, HeaderValue::from(resp.rsc.code()));
    if let Some(rqi) = echo
        .rqi
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(headers::RI, rqi);
    }
    if let Some(rvi) = echo
        .rvi
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(headers::RVI, rvi);
    }
    let ot = resp
        .ot
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok());
    h.insert(headers::OT, ot.unwrap_or_else(now));
    if let Some(location) = &resp.location {
        if let Ok(v) = HeaderValue::from_str(&utf8_percent_encode(location, LOCATION).to_string()) {
            h.insert(CONTENT_LOCATION, v);
        }
    }
    if let Some(cnst) = resp.cnst {
        h.insert(headers::CTS, HeaderValue::from(u16::from(cnst.code())));
    }
    if let Some(cnot) = resp.cnot {
        h.insert(headers::CTO, HeaderValue::from(cnot));
    }
    if resp.pc.is_some() {
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(echo.format.media_type()),
        );
    }
    h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *out.body_mut() = Full::new(Bytes::from(body));
    out
}

fn now() -> HeaderValue {
    // A formatted timestamp is digits, `T` and `,`: always a valid header value.
    HeaderValue::from_str(&model::time::format(model::time::now()))
        .unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ResponseStatusCode;
    use serde_json::json;

    fn header<'a>(r: &'a http::Response<Full<Bytes>>, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn a_partial_result_carries_content_status_and_offset() {
        let mut resp = Response::new(ResponseStatusCode::Ok, "r", Some(json!({"m2m:rrl": {}})));
        let full = to_http(&resp, &Echo::default(), None);
        assert_eq!(header(&full, "x-m2m-cts"), None);
        assert_eq!(header(&full, "x-m2m-cto"), None);
        resp.cnst = Some(model::ContentStatus::Partial);
        resp.cnot = Some(1000);
        let partial = to_http(&resp, &Echo::default(), None);
        assert_eq!(header(&partial, "x-m2m-cts"), Some("1"));
        assert_eq!(header(&partial, "x-m2m-cto"), Some("1000"));
    }

    #[test]
    fn created_response() {
        let mut resp = Response::new(
            ResponseStatusCode::Created,
            "ignored",
            Some(json!({"m2m:cnt": {"rn": "c"}})),
        );
        resp.location = Some("cse-in/ae/my box/é".to_owned());
        let echo = Echo {
            rqi: Some("r1".into()),
            rvi: Some("3".into()),
            format: Format::Json,
        };
        let r = to_http(&resp, &echo, None);
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "x-m2m-rsc"), Some("2001"));
        assert_eq!(header(&r, "x-m2m-ri"), Some("r1"));
        assert_eq!(header(&r, "x-m2m-rvi"), Some("3"));
        assert_eq!(
            header(&r, "content-location"),
            Some("cse-in/ae/my%20box/%C3%A9")
        );
        assert_eq!(header(&r, "content-type"), Some("application/json"));
        assert_eq!(header(&r, "content-length"), Some("22"));
        assert!(header(&r, "x-m2m-ot").is_some_and(|t| model::time::parse(t).is_ok()));
    }

    #[test]
    fn empty_and_overridden_responses() {
        let resp = Response::new(ResponseStatusCode::Deleted, "r", None);
        let r = to_http(&resp, &Echo::default(), None);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), None);
        assert_eq!(header(&r, "content-length"), Some("0"));
        assert_eq!(header(&r, "x-m2m-ri"), None);
        let resp = Response::new(
            ResponseStatusCode::BadRequest,
            "r",
            Some(json!({"m2m:dbg": "too big"})),
        );
        let echo = Echo {
            format: Format::Cbor,
            ..Echo::default()
        };
        let r = to_http(&resp, &echo, Some(StatusCode::PAYLOAD_TOO_LARGE));
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(header(&r, "content-type"), Some("application/cbor"));
    }
}
