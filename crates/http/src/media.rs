//! Media types: what the request body is (`Content-Type`, with its `ty=` parameter, which
//! is also what tells CREATE from NOTIFY) and what the client wants back (`Accept`).

use http::header::{HeaderMap, ACCEPT};
use model::codec::Format;
use model::{Error, ResourceType, ResponseStatusCode, Result};

/// A parsed request `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// The serialization of the body.
    pub(crate) format: Format,
    /// The `ty=` parameter: present only on CREATE (TS-0009 clause 6.4.3).
    pub(crate) ty: Option<ResourceType>,
}

/// Parses a `Content-Type` value such as `application/vnd.onem2m-res+json; ty=3`.
///
/// An unsupported media type is 4015; a malformed, repeated or unknown `ty` is 4000.
/// Other parameters (`charset=utf-8`) are ignored: JSON is UTF-8 by definition.
pub(crate) fn content_type(value: &str) -> Result<ContentType> {
    let format = Format::from_media_type(value)?;
    let mut ty = None;
    for param in value
        .split(';')
        .skip(1)
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (key, val) = param.split_once('=').unwrap_or((param, ""));
        if !key.trim().eq_ignore_ascii_case("ty") {
            continue;
        }
        if ty.is_some() {
            return Err(Error::bad_request(
                "Content-Type has more than one ty parameter",
            ));
        }
        let val = val.trim().trim_matches('"');
        let code: u64 = val
            .parse()
            .map_err(|_| Error::bad_request(format!("Content-Type ty '{val}' is not a number")))?;
        ty = Some(ResourceType::from_code(code)?);
    }
    Ok(ContentType { format, ty })
}

/// Chooses the response serialization from the `Accept` header(s).
///
/// No `Accept` means JSON. `*/*` and `application/*` mean JSON. Otherwise the supported
/// type with the highest `q` wins, the first listed on a tie; `q=0` excludes a type. When
/// the client accepts nothing we can produce, the answer is 5207 NOT_ACCEPTABLE (HTTP 406)
/// rather than a body the client said it cannot read.
pub(crate) fn negotiate(headers: &HeaderMap) -> Result<Format> {
    let mut best: Option<(u16, Format)> = None;
    let mut asked = false;
    for value in headers.get_all(ACCEPT) {
        let value = value
            .to_str()
            .map_err(|_| Error::bad_request("Accept header is not visible ASCII"))?;
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if media.is_empty() {
                continue;
            }
            asked = true;
            let q = parts.find_map(quality).unwrap_or(1000);
            let format = match media.as_str() {
                "*/*" | "application/*" => Some(Format::Json),
                other => Format::from_media_type(other).ok(),
            };
            if let Some(format) = format.filter(|_| q > 0) {
                if best.is_none_or(|(best_q, _)| q > best_q) {
                    best = Some((q, format));
                }
            }
        }
    }
    match best {
        Some((_, format)) => Ok(format),
        None if !asked => Ok(Format::Json),
        None => Err(Error::new(
            ResponseStatusCode::NotAcceptable,
            "none of the Accept media types is supported (application/json, application/cbor)",
        )),
    }
}

/// The `q` weight of one media-range parameter, in thousandths. A malformed weight counts
/// as 1: the client did name the type.
fn quality(param: &str) -> Option<u16> {
    let (key, val) = param.split_once('=')?;
    if !key.trim().eq_ignore_ascii_case("q") {
        return None;
    }
    let q: f32 = val.trim().parse().ok()?;
    // q has at most three decimals (RFC 9110 clause 12.4.2), so thousandths are exact.
    Some((q.clamp(0.0, 1.0) * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(values: &[&str]) -> Result<Format> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT, HeaderValue::from_str(v).expect("test header"));
        }
        negotiate(&h)
    }

    #[test]
    fn content_type_format_and_ty() {
        let ct = content_type("application/vnd.onem2m-res+json; ty=3").expect("valid");
        assert_eq!(
            ct,
            ContentType {
                format: Format::Json,
                ty: Some(ResourceType::Container)
            }
        );
        let ct = content_type("application/cbor;ty=4;charset=utf-8").expect("valid");
        assert_eq!(
            ct,
            ContentType {
                format: Format::Cbor,
                ty: Some(ResourceType::ContentInstance)
            }
        );
        assert_eq!(content_type("application/json").map(|c| c.ty), Ok(None));
        assert_eq!(
            content_type("application/json; TY=\"2\"").map(|c| c.ty),
            Ok(Some(ResourceType::Ae))
        );
    }

    #[test]
    fn content_type_errors() {
        let rsc = |v| content_type(v).map_err(|e| e.rsc);
        assert_eq!(
            rsc("text/plain; ty=3"),
            Err(ResponseStatusCode::UnsupportedMediaType)
        );
        assert_eq!(
            rsc("application/json; ty=77"),
            Err(ResponseStatusCode::BadRequest)
        );
        assert_eq!(
            rsc("application/json; ty=x"),
            Err(ResponseStatusCode::BadRequest)
        );
        assert_eq!(
            rsc("application/json; ty="),
            Err(ResponseStatusCode::BadRequest)
        );
        assert_eq!(
            rsc("application/json; ty=3; ty=4"),
            Err(ResponseStatusCode::BadRequest)
        );
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(accept(&[]), Ok(Format::Json));
        assert_eq!(accept(&["*/*"]), Ok(Format::Json));
        assert_eq!(accept(&["application/cbor"]), Ok(Format::Cbor));
        assert_eq!(
            accept(&["application/vnd.onem2m-res+cbor"]),
            Ok(Format::Cbor)
        );
        assert_eq!(
            accept(&["application/json, application/cbor"]),
            Ok(Format::Json)
        );
        assert_eq!(
            accept(&["application/json;q=0.5, application/cbor"]),
            Ok(Format::Cbor)
        );
        assert_eq!(accept(&["text/html", "application/cbor"]), Ok(Format::Cbor));
        assert_eq!(accept(&["text/html,*/*;q=0.8"]), Ok(Format::Json));
        assert_eq!(accept(&["application/cbor;q=0, */*"]), Ok(Format::Json));
        assert_eq!(accept(&[""]), Ok(Format::Json));
        assert_eq!(
            accept(&["application/xml"]).map_err(|e| e.rsc),
            Err(ResponseStatusCode::NotAcceptable)
        );
        assert_eq!(
            accept(&["application/json;q=0"]).map_err(|e| e.rsc),
            Err(ResponseStatusCode::NotAcceptable)
        );
    }
}
