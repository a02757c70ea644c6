//! `<semanticDescriptor>` (ty 24, TS-0004 clause 7.4.34; TS-0001 clause 9.6.30): RDF
//! triples that describe the parent resource. The descriptor (`dsp`) is base64 of a document
//! in the format `dcrp` names; the Hosting CSE checks that it is one (clause 7.4.34.2.1,
//! Recv-6.4), so every stored descriptor parses. RDF/XML and Turtle are parsed by the
//! Oxigraph project's parsers (`oxrdfxml`, `oxttl`); the other formats of
//! `m2m:semanticFormat` cannot be checked here and are refused rather than stored unchecked.

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use base64::Engine;
use serde_json::{Map, Value};

/// Attribute table (TS-0004 tables 7.4.34.1-2 and 7.4.34.1-3). Defined but not supported
/// (5001): announcement (`at`, `aa`) and `soe` (semanticOpExec, a SPARQL Update of the
/// descriptor). `svd` (semanticValidated) is set by the CSE only; `vlde` is kept as local
/// policy sets it ([`VALIDATION_POLICY`]).
pub const ATTRIBUTES: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("cr", Kind::NullOnly, Optional, NotPresent),
    attr("at", Kind::Unsupported, Optional, Optional),
    attr("aa", Kind::Unsupported, Optional, Optional),
    attr(
        "dcrp",
        Kind::OneOf(&[1, 2, 3, 4, 5, 6, 7]),
        Mandatory,
        Optional,
    ),
    attr("soe", Kind::Unsupported, NotPresent, Optional),
    attr("dsp", Kind::Str, Mandatory, Optional),
    attr("or", Kind::Uri, Optional, Optional),
    attr("rels", Kind::UriList, Optional, Optional),
    attr("svd", Kind::Bool, NotPresent, NotPresent),
    attr("vlde", Kind::Bool, Optional, Optional),
];

/// The local policy on semantic validation (TS-0004 clause 7.4.34.2.1, Recv-6.5 a): this
/// CSE hosts no ontologies and does not fetch them, so it performs no semantic validation
/// (TS-0034 clause 7.10) and sets `vlde` to this value whatever the request asked.
pub const VALIDATION_POLICY: bool = false;

/// `m2m:semanticFormat` (TS-0004 table 6.3.4.2.48-1), the formats a descriptor can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 4: RDF/XML.
    RdfXml,
    /// 5: RDF/Turtle.
    Turtle,
}

impl Format {
    /// The format for a `dcrp` value: 1 (IRI) is 4000 for a descriptor (clause 7.4.34.2.1
    /// Recv-6.4 c); 2 (Functional-style), 3 (OWL/XML), 6 (Manchester) and 7 (JSON-LD) are
    /// defined but not parsed here (5001); others are not formats (4000).
    pub fn of(dcrp: u64) -> Result<Self> {
        match dcrp {
            4 => Ok(Self::RdfXml),
            5 => Ok(Self::Turtle),
            1 => Err(Error::bad_request(
                "dcrp 1 (IRI) is not a representation of a descriptor",
            )),
            2 | 3 | 6 | 7 => Err(Error::not_implemented(format!(
                "dcrp {dcrp}: this CSE checks descriptors in RDF/XML (4) and Turtle (5) only"
            ))),
            _ => Err(Error::bad_request(format!(
                "dcrp {dcrp} is not a semantic format"
            ))),
        }
    }
}

/// The largest descriptor accepted, decoded (1 MiB): the whole document is parsed on every
/// CREATE and UPDATE.
pub const MAX_DESCRIPTOR: usize = 1 << 20;

/// Decodes and parses a descriptor: base64 (standard alphabet, padded, as `xs:base64Binary`;
/// white space between characters is allowed) of a document in `format`. Returns the number
/// of triples. Anything else is 4000 (clause 7.4.34.2.1 Recv-6.4 b) with the parser's reason.
pub fn check_descriptor(format: Format, dsp: &str) -> Result<usize> {
    let compact: String = dsp.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() / 4 * 3 > MAX_DESCRIPTOR + 3 {
        return Err(Error::bad_request("dsp is larger than 1 MiB"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| Error::bad_request(format!("dsp is not base64: {e}")))?;
    if bytes.is_empty() {
        return Err(Error::bad_request("dsp is empty"));
    }
    let mut count = 0usize;
    match format {
        Format::RdfXml => {
            for triple in oxrdfxml::RdfXmlParser::new().for_slice(&bytes) {
                triple.map_err(|e| Error::bad_request(format!("dsp is not RDF/XML: {e}")))?;
                count += 1;
            }
        }
        Format::Turtle => {
            for triple in oxttl::TurtleParser::new().for_slice(&bytes) {
                triple.map_err(|e| Error::bad_request(format!("dsp is not Turtle: {e}")))?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Checks a `<semanticDescriptor>` as it would be after the request (`attrs`: the CREATE's
/// attributes, or the stored ones with the UPDATE applied): `dcrp` names a format this CSE
/// parses and `dsp` is a document in it. `or` must be an absolute IRI (it names an ontology).
pub fn validate(attrs: &Map<String, Value>) -> Result<()> {
    let dcrp = attrs
        .get("dcrp")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::bad_request("missing dcrp"))?;
    let format = Format::of(dcrp)?;
    let dsp = attrs
        .get("dsp")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("missing dsp"))?;
    check_descriptor(format, dsp)?;
    if let Some(or) = attrs.get("or").and_then(Value::as_str) {
        if !or.split_once(':').is_some_and(|(scheme, rest)| {
            !rest.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }) {
            return Err(Error::bad_request(format!(
                "or '{}' is not an absolute IRI",
                crate::Untrusted(or)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsc::ResponseStatusCode as R;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    const RDF_XML: &str = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/house1">
    <rdf:type rdf:resource="http://example.org/House"/>
    <ex:temperature>21</ex:temperature>
  </rdf:Description>
</rdf:RDF>"#;

    const TURTLE: &str =
        "@prefix ex: <http://example.org/> .\nex:house1 a ex:House ; ex:temperature 21 .\n";

    fn smd(dcrp: u64, dsp: &str) -> Map<String, Value> {
        json!({"dcrp": dcrp, "dsp": dsp})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn descriptors_parse_in_their_format() {
        assert_eq!(
            check_descriptor(Format::RdfXml, &b64(RDF_XML)).ok(),
            Some(2)
        );
        assert_eq!(check_descriptor(Format::Turtle, &b64(TURTLE)).ok(), Some(2));
        assert!(validate(&smd(4, &b64(RDF_XML))).is_ok());
        // Line breaks inside the base64 are allowed.
        let wrapped: String = b64(TURTLE)
            .as_bytes()
            .chunks(20)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(validate(&smd(5, &wrapped)).is_ok());
    }

    #[test]
    fn malformed_descriptors_are_bad_requests() {
        for (dcrp, dsp) in [
            (4, b64(TURTLE)),
            (5, b64(RDF_XML)),
            (4, b64("<rdf:RDF")),
            (5, b64("ex:a ex:b")),
            (4, "%%%".to_owned()),
            (4, String::new()),
            (1, b64(TURTLE)),
            (9, b64(TURTLE)),
        ] {
            let err = validate(&smd(dcrp, &dsp)).expect_err("refused");
            assert_eq!(err.rsc, R::BadRequest, "{dcrp} {dsp}: {}", err.message);
        }
        for dcrp in [2, 3, 6, 7] {
            let err = validate(&smd(dcrp, &b64(TURTLE))).expect_err("refused");
            assert_eq!(err.rsc, R::NotImplemented, "{dcrp}");
        }
        let mut bad_or = smd(5, &b64(TURTLE));
        bad_or.insert("or".into(), json!("no-scheme"));
        assert_eq!(validate(&bad_or).expect_err("or").rsc, R::BadRequest);
        bad_or.insert("or".into(), json!("http://example.org/onto"));
        assert!(validate(&bad_or).is_ok());
    }
}
