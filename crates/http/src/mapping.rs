//! The binding's whole request mapping as one pure call, so that fuzz targets and property
//! tests feed untrusted heads and bodies through the real code without a socket.

use crate::{headers, media, request};
use http::request::Parts;
use model::codec::Format;
use model::{Request, Result};

/// Maps an HTTP request head and its body to a validated request primitive: the server's own
/// steps ([`head`], then the body), followed by the primitive checks the CSE applies.
pub fn primitive_from_http(parts: &Parts, body: &[u8]) -> Result<Request> {
    let rqi = headers::request_id(&parts.headers);
    let accept = media::negotiate(&parts.headers);
    let (mut primitive, format) = head(parts, rqi, accept)?;
    primitive.pc = request::content(body, format)?;
    primitive.validate()?;
    Ok(primitive)
}

/// The head of a request to a resource as a primitive without content, and the content
/// format it declares. The order decides which error wins: an unmapped method (4005), then
/// `X-M2M-RI`, `Accept`, the head. `rqi` and `accept` come read already, because the server
/// echoes them in any error.
pub(crate) fn head(
    parts: &Parts,
    rqi: Result<String>,
    accept: Result<Format>,
) -> Result<(Request, Option<Format>)> {
    request::operation(&parts.method, false)?;
    let rqi = rqi?;
    accept?;
    request::from_head(parts, rqi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Operation, ResponseStatusCode};

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("test request").into_parts().0
    }

    #[test]
    fn maps_head_and_body_like_the_server() {
        let head = parts(
            "/cse-in?rcn=1",
            &[
                ("X-M2M-RI", "r1"),
                ("X-M2M-Origin", "Cae1"),
                ("Content-Type", "application/json;ty=3"),
            ],
        );
        let p = primitive_from_http(&head, br#"{"m2m:cnt":{"rn":"box"}}"#).expect("valid");
        assert_eq!(
            (p.op, p.to.as_str(), p.rqi.as_str()),
            (Operation::Create, "cse-in", "r1")
        );
        assert!(p.pc.is_some());
        let rsc = |r: Result<Request>| r.err().map(|e| e.rsc);
        assert_eq!(
            rsc(primitive_from_http(&parts("/cse-in", &[]), b"")),
            Some(ResponseStatusCode::BadRequest),
            "no X-M2M-RI"
        );
        let head = parts("/cse-in", &[("X-M2M-RI", "r1"), ("X-M2M-RVI", "0")]);
        assert_eq!(
            rsc(primitive_from_http(&head, b"")),
            Some(ResponseStatusCode::ReleaseVersionNotSupported)
        );
    }
}
