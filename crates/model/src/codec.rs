//! Serializations of primitive content (TS-0004 clause 8.3-8.5): JSON and CBOR. Both decode
//! into the same JSON value tree, so the rest of the CSE is serialization-agnostic.

use crate::error::{Error, Result};
use crate::rsc::ResponseStatusCode;
use serde_json::Value;

/// A content serialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json` and the `vnd.onem2m-res+json` family.
    Json,
    /// `application/cbor` and the `vnd.onem2m-res+cbor` family.
    Cbor,
}

impl Format {
    /// The format named by a media type (parameters such as `ty=` are ignored here).
    pub fn from_media_type(mt: &str) -> Result<Self> {
        let essence = mt
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json"
            | "application/vnd.onem2m-res+json"
            | "application/vnd.onem2m-ntfy+json"
            | "application/vnd.onem2m-preq+json"
            | "application/vnd.onem2m-prsp+json" => Ok(Self::Json),
            "application/cbor"
            | "application/vnd.onem2m-res+cbor"
            | "application/vnd.onem2m-ntfy+cbor"
            | "application/vnd.onem2m-preq+cbor"
            | "application/vnd.onem2m-prsp+cbor" => Ok(Self::Cbor),
            _ => Err(Error::new(
                ResponseStatusCode::UnsupportedMediaType,
                format!("unsupported media type '{mt}'"),
            )),
        }
    }

    /// The media type to label content of this format with.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Cbor => "application/cbor",
        }
    }
}

/// Decodes content; anything malformed or with trailing data is a 4000.
pub fn decode(bytes: &[u8], format: Format) -> Result<Value> {
    match format {
        Format::Json => serde_json::from_slice(bytes)
            .map_err(|e| Error::bad_request(format!("malformed JSON: {e}"))),
        Format::Cbor => {
            let mut reader = bytes;
            let v: Value = ciborium::de::from_reader(&mut reader)
                .map_err(|e| Error::bad_request(format!("malformed CBOR: {e}")))?;
            if !reader.is_empty() {
                return Err(Error::bad_request("trailing data after CBOR content"));
            }
            Ok(v)
        }
    }
}

/// Encodes content.
pub fn encode(value: &Value, format: Format) -> Vec<u8> {
    match format {
        Format::Json => serde_json::to_vec(value).unwrap_or_default(),
        Format::Cbor => {
            let mut out = Vec::new();
            // Writing into a Vec cannot fail for a JSON value tree.
            let _ = ciborium::ser::into_writer(value, &mut out);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_cbor_round_trip() {
        let v = json!({"m2m:cin": {"con": "21.5", "lbl": ["a"], "n": -3, "f": 1.5, "b": true}});
        for f in [Format::Json, Format::Cbor] {
            assert_eq!(decode(&encode(&v, f), f).ok(), Some(v.clone()));
        }
    }

    #[test]
    fn malformed_is_bad_request() {
        assert_eq!(
            decode(b"{\"a\":", Format::Json).map_err(|e| e.rsc),
            Err(ResponseStatusCode::BadRequest)
        );
        assert_eq!(
            decode(&[0xff, 0x00], Format::Cbor).map_err(|e| e.rsc),
            Err(ResponseStatusCode::BadRequest)
        );
        let mut two = encode(&json!(1), Format::Cbor);
        two.extend(encode(&json!(2), Format::Cbor));
        assert!(decode(&two, Format::Cbor).is_err());
        assert_eq!(
            Format::from_media_type("text/plain").map_err(|e| e.rsc),
            Err(ResponseStatusCode::UnsupportedMediaType)
        );
        assert_eq!(
            Format::from_media_type("application/vnd.onem2m-res+json; ty=3").ok(),
            Some(Format::Json)
        );
    }
}
