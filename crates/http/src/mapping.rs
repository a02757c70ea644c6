//! The binding's whole request mapping as one pure call, so that fuzz targets and property
//! tests feed untrusted heads and bodies through the real code without a socket.

use crate::{headers, media, request};
use http::request::Parts;
use model::{Request, Result};

/// Maps an HTTP request head and its body to a validated request primitive, in the order the
/// server applies the same steps (method, `X-M2M-RI`, `Accept`, head, body, primitive checks).
///
/// The server does not call this function (it reads the body between the steps), so it is
/// kept for tests and fuzzing; every step it calls is the server's own.
pub fn primitive_from_http(parts: &Parts, body: &[u8]) -> Result<Request> {
    request::operation(&parts.method, false)?;
    let rqi = headers::request_id(&parts.headers)?;
    media::negotiate(&parts.headers)?;
    let (mut primitive, format) = request::from_head(parts, rqi)?;
    primitive.pc = request::content(body, format)?;
    primitive.validate()?;
    Ok(primitive)
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
