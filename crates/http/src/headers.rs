//! The oneM2M header names (TS-0009 clause 6.4) and strict access to single-valued headers.

use http::header::{HeaderMap, HeaderName};
use model::{Error, Result};

/// `From`.
pub(crate) const ORIGIN: HeaderName = HeaderName::from_static("x-m2m-origin");
/// Request Identifier, both ways.
pub(crate) const RI: HeaderName = HeaderName::from_static("x-m2m-ri");
/// Release Version Indicator.
pub(crate) const RVI: HeaderName = HeaderName::from_static("x-m2m-rvi");
/// Response Status Code.
pub(crate) const RSC: HeaderName = HeaderName::from_static("x-m2m-rsc");
/// Originating Timestamp.
pub(crate) const OT: HeaderName = HeaderName::from_static("x-m2m-ot");
/// Request Expiration Timestamp.
pub(crate) const RET: HeaderName = HeaderName::from_static("x-m2m-ret");
/// Result Expiration Timestamp.
pub(crate) const RST: HeaderName = HeaderName::from_static("x-m2m-rst");
/// Operation Execution Time.
pub(crate) const OET: HeaderName = HeaderName::from_static("x-m2m-oet");
/// Content Status of a partial RETRIEVE result (TS-0009 clause 6.4.20).
pub(crate) const CTS: HeaderName = HeaderName::from_static("x-m2m-cts");
/// Content Offset that continues a partial result (TS-0009 clause 6.4.21).
pub(crate) const CTO: HeaderName = HeaderName::from_static("x-m2m-cto");
/// Vendor Information.
pub(crate) const VSI: HeaderName = HeaderName::from_static("x-m2m-vsi");
/// `X-M2M-RTU`: the notification targets of a non-blocking asynchronous request's result
/// (TS-0009 clause 6.4.11), `&`-separated; present and empty: no notification.
pub(crate) const RTU: HeaderName = HeaderName::from_static("x-m2m-rtu");
/// `X-M2M-EC`: the Event Category (TS-0009 clause 6.4.16).
pub(crate) const EC: HeaderName = HeaderName::from_static("x-m2m-ec");

/// Tokens (TS-0009 clause 6.4.19): the standard `Authorization` header carries the `tkns`
/// parameter, one JWT after another separated by `+`.
pub(crate) const AUTHORIZATION: HeaderName = http::header::AUTHORIZATION;
/// Most tokens accepted in one request: each costs a signature check.
pub(crate) const MAX_TOKENS: usize = 8;

/// Longest accepted `X-M2M-RI`. The identifier is echoed and logged, so it is bounded well
/// below the header limit.
pub(crate) const MAX_RQI_LEN: usize = 256;

/// The value of a header that may appear at most once.
///
/// A repeated header is 4000 rather than "first wins": two different `X-M2M-Origin` values
/// must not be resolved differently by a proxy and by us. Values must be visible ASCII.
pub(crate) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::bad_request(format!(
            "header {name} appears more than once"
        )));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| Error::bad_request(format!("header {name} is not visible ASCII")))
}

/// The mandatory `X-M2M-RI`: present once, 1 to [`MAX_RQI_LEN`] visible characters.
pub(crate) fn request_id(headers: &HeaderMap) -> Result<String> {
    match single(headers, &RI)? {
        None => Err(Error::bad_request("missing X-M2M-RI header")),
        Some("") => Err(Error::bad_request("empty X-M2M-RI header")),
        Some(ri) if ri.len() > MAX_RQI_LEN => Err(Error::bad_request(format!(
            "X-M2M-RI longer than {MAX_RQI_LEN} characters"
        ))),
        Some(ri) => Ok(ri.to_owned()),
    }
}

/// The `tkns` parameter from the `Authorization` header: tokens separated by `+` (spaces
/// around them are tolerated). An empty item or more than [`MAX_TOKENS`] is 4000.
pub(crate) fn tokens(headers: &HeaderMap) -> Result<Vec<String>> {
    let Some(value) = single(headers, &AUTHORIZATION)? else {
        return Ok(Vec::new());
    };
    let tokens: Vec<String> = value.split('+').map(|t| t.trim().to_owned()).collect();
    if tokens.iter().any(String::is_empty) {
        return Err(Error::bad_request(
            "empty token in the Authorization header",
        ));
    }
    if tokens.len() > MAX_TOKENS {
        return Err(Error::bad_request(format!(
            "more than {MAX_TOKENS} tokens in one request"
        )));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn request_id_rules() {
        let mut h = HeaderMap::new();
        assert!(request_id(&h).is_err());
        h.insert(RI, HeaderValue::from_static(""));
        assert!(request_id(&h).is_err());
        h.insert(RI, HeaderValue::from_static("abc-1"));
        assert_eq!(request_id(&h).ok().as_deref(), Some("abc-1"));
        h.append(RI, HeaderValue::from_static("abc-2"));
        assert!(request_id(&h).is_err());
        h.insert(
            RI,
            HeaderValue::from_str(&"x".repeat(MAX_RQI_LEN + 1)).expect("ascii"),
        );
        assert!(request_id(&h).is_err());
        h.insert(
            RI,
            HeaderValue::from_bytes(b"caf\xc3\xa9").expect("obs-text"),
        );
        assert!(request_id(&h).is_err());
    }

    #[test]
    fn tokens_are_split_on_plus() {
        let mut h = HeaderMap::new();
        assert_eq!(tokens(&h).ok(), Some(Vec::new()));
        h.insert(AUTHORIZATION, HeaderValue::from_static("a.b.c+ d.e.f"));
        assert_eq!(
            tokens(&h).ok(),
            Some(vec!["a.b.c".to_owned(), "d.e.f".to_owned()])
        );
        h.insert(AUTHORIZATION, HeaderValue::from_static("a.b.c++d"));
        assert!(tokens(&h).is_err());
        h.insert(AUTHORIZATION, HeaderValue::from_static("x+x+x+x+x+x+x+x+x"));
        assert!(tokens(&h).is_err());
    }
}
