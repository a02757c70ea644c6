//! Request and response primitives (TS-0004 clause 8.2.1): what every binding produces and
//! consumes, independent of HTTP, CoAP or MQTT.

use crate::error::{Error, Result};
use crate::filter::FilterCriteria;
use crate::rsc::ResponseStatusCode;
use crate::time::Timestamp;
use crate::types::{Operation, ResourceType};
use serde_json::Value;

/// Release versions this CSE implements: what the `<CSEBase>` lists in `srv` and what it
/// accepts in `rvi` (any other value: RELEASE_VERSION_NOT_SUPPORTED, TS-0004 clause
/// 7.3.2.1). Releases 4 and 5 are not claimed: their attributes are not implemented, so a
/// request that sets one is refused as unknown (TS-0004 clause 7.3.3.3).
pub const SUPPORTED_RELEASES: &[&str] = &["2a", "3"];

/// What the response should contain (`rcn`, TS-0004 clause 6.3.4.2.18 / 7.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultContent {
    /// 0: nothing.
    Nothing,
    /// 1: the resource's attributes.
    Attributes,
    /// 2: the hierarchical address of the (created) resource.
    HierarchicalAddress,
    /// 3: hierarchical address and attributes.
    HierarchicalAddressAndAttributes,
    /// 4: attributes and the child resources.
    AttributesAndChildResources,
    /// 5: attributes and references to the children.
    AttributesAndChildResourceReferences,
    /// 6: references to the children only.
    ChildResourceReferences,
    /// 8: the child resources only.
    ChildResources,
    /// 9: only the attributes an UPDATE changed.
    ModifiedAttributes,
    /// 11: discovery result references (the default for `fu=1`).
    DiscoveryResultReferences,
}

/// Every result content value with its wire number, in one table.
const RCN_CODES: &[(ResultContent, u8)] = &[
    (ResultContent::Nothing, 0),
    (ResultContent::Attributes, 1),
    (ResultContent::HierarchicalAddress, 2),
    (ResultContent::HierarchicalAddressAndAttributes, 3),
    (ResultContent::AttributesAndChildResources, 4),
    (ResultContent::AttributesAndChildResourceReferences, 5),
    (ResultContent::ChildResourceReferences, 6),
    (ResultContent::ChildResources, 8),
    (ResultContent::ModifiedAttributes, 9),
    (ResultContent::DiscoveryResultReferences, 11),
];

impl ResultContent {
    /// Parses a wire number.
    pub fn from_code(n: u64) -> Result<Self> {
        RCN_CODES
            .iter()
            .find(|(_, c)| u64::from(*c) == n)
            .map(|(r, _)| *r)
            .ok_or_else(|| Error::bad_request(format!("unsupported result content {n}")))
    }

    /// The wire number.
    pub fn code(self) -> u8 {
        RCN_CODES
            .iter()
            .find(|(r, _)| *r == self)
            .map_or(1, |(_, c)| *c)
    }

    /// Whether this value is defined for an operation (TS-0001 table 8.1.2-1; TS-0004
    /// clause 7.3.2.1 refuses the others with 4000). Discovery returns addresses only.
    pub fn allowed_for(self, op: Operation, discovery: bool) -> bool {
        use ResultContent::*;
        match op {
            Operation::Create => matches!(
                self,
                Nothing
                    | Attributes
                    | HierarchicalAddress
                    | HierarchicalAddressAndAttributes
                    | ModifiedAttributes
            ),
            Operation::Retrieve if discovery => {
                matches!(self, DiscoveryResultReferences | ChildResourceReferences)
            }
            Operation::Retrieve => matches!(self, Attributes) || self.is_child_related(),
            Operation::Update => matches!(self, Nothing | Attributes | ModifiedAttributes),
            Operation::Delete => matches!(self, Nothing | Attributes) || self.is_child_related(),
            Operation::Notify => matches!(self, Nothing),
        }
    }

    /// Whether the result holds the target's children and their descendants (`rcn` 4, 5,
    /// 6, 8).
    pub fn is_child_related(self) -> bool {
        matches!(
            self,
            ResultContent::AttributesAndChildResources
                | ResultContent::AttributesAndChildResourceReferences
                | ResultContent::ChildResourceReferences
                | ResultContent::ChildResources
        )
    }
}

/// A request primitive. Bindings fill it in; the CSE never sees transport details.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation.
    pub op: Operation,
    /// The target address as given (`To`).
    pub to: String,
    /// The originator (`From`), if any.
    pub fr: Option<String>,
    /// Request identifier, echoed in the response.
    pub rqi: String,
    /// Release version indicator.
    pub rvi: Option<String>,
    /// Resource type to create (CREATE only).
    pub ty: Option<ResourceType>,
    /// The content (`pc`), already decoded.
    pub pc: Option<Value>,
    /// Result content wanted.
    pub rcn: Option<ResultContent>,
    /// Filter criteria (`fc`), including `fu`.
    pub fc: FilterCriteria,
    /// Discovery result type: 1 structured (default), 2 unstructured.
    pub drt: Option<u8>,
    /// Partial retrieve: the attribute names wanted.
    pub atrl: Vec<String>,
    /// Originating timestamp, if sent.
    pub ot: Option<String>,
    /// Request expiration timestamp (`m2m:absRelTimestamp`), if sent.
    pub rqet: Option<String>,
    /// Result expiration timestamp (`m2m:absRelTimestamp`), if sent.
    pub rset: Option<String>,
    /// Operation execution time (`m2m:absRelTimestamp`), if sent.
    pub oet: Option<String>,
    /// Response type (TS-0004 clause 6.3.4.2.6 `m2m:responseType`): absent, 3 (blocking) and 4
    /// (flex-blocking, which this CSE always answers blocking) are served at once; 1 and 2
    /// (non-blocking) are accepted and served through a `<request>` resource.
    pub rt: Option<u8>,
    /// The notification targets of a non-blocking asynchronous request (`responseTypeInfo`
    /// `nu`, HTTP `X-M2M-RTU`): none: the originator; an empty list: nobody (TS-0004
    /// clause 7.5.1.2.5). Only with `rt` 2.
    pub rtu: Option<Vec<String>>,
    /// Result Persistence (`rp`): how long the result of a non-blocking request stays
    /// retrievable, as a relative time in milliseconds, an `xs:duration` or an absolute
    /// timestamp.
    pub rp: Option<String>,
    /// Vendor information, passed through.
    pub vsi: Option<String>,
    /// Event Category (`ec`, TS-0004 table 6.3.4.2.4-1 `m2m:eventCat`): 2 immediate, 3
    /// best effort, 4 latest, 100-999 user-defined. It steers store-and-forward, which this
    /// CSE does not do for requests: every request is served at once, whatever its
    /// category; a value outside `m2m:eventCat` is 4000.
    pub ec: Option<u16>,
    /// Tokens (`tkns`): signed JWTs for token-based dynamic authorization (TS-0003 7.3.2.3).
    pub tkns: Vec<String>,
    /// Role IDs (`rids`) the originator claims; honoured only as far as a verified token
    /// or a `<role>` resource of this CSE assigns them to the originator.
    pub rids: Vec<String>,
    /// Token IDs (`tids`): tokens the originator names rather than carries, kept in
    /// `<token>` resources of this CSE (TS-0003 clause 7.4.3).
    pub tids: Vec<String>,
}

/// Event Category "latest" (TS-0004 table 6.3.4.2.4-1): of several pending requests with
/// the same subscription reference, only the newest needs to be delivered.
pub const EVENT_CATEGORY_LATEST: u16 = 4;

/// Whether `ec` is an `m2m:eventCat`: a standard category (2 immediate, 3 best effort, 4
/// latest) or a user-defined one (100-999).
pub fn is_event_category(ec: u16) -> bool {
    matches!(ec, 2..=4 | 100..=999)
}

impl Request {
    /// A request with only the mandatory parts set; handy for internal and test requests.
    pub fn new(op: Operation, to: impl Into<String>, fr: Option<String>) -> Self {
        Self {
            op,
            to: to.into(),
            fr,
            rqi: crate::id::random_token(12),
            rvi: Some("3".to_owned()),
            ty: None,
            pc: None,
            rcn: None,
            fc: FilterCriteria::default(),
            drt: None,
            atrl: Vec::new(),
            ot: None,
            rqet: None,
            rset: None,
            oet: None,
            rt: None,
            rtu: None,
            rp: None,
            vsi: None,
            ec: None,
            tkns: Vec::new(),
            rids: Vec::new(),
            tids: Vec::new(),
        }
    }

    /// True for a non-blocking request (`rt` 1 or 2): accepted at once, executed later,
    /// its result kept in a `<request>` resource.
    pub fn is_non_blocking(&self) -> bool {
        matches!(self.rt, Some(1 | 2))
    }

    /// True when this RETRIEVE is a discovery (`fu=1`).
    pub fn is_discovery(&self) -> bool {
        self.op == Operation::Retrieve && self.fc.fu == Some(1)
    }

    /// Checks the parts that do not depend on the CSE's state: `rvi`, `rcn` for the operation.
    pub fn validate(&self) -> Result<()> {
        if let Some(rvi) = &self.rvi {
            if !SUPPORTED_RELEASES.contains(&rvi.as_str()) {
                return Err(Error::new(
                    ResponseStatusCode::ReleaseVersionNotSupported,
                    format!("release version '{rvi}' not supported"),
                ));
            }
        }
        if let Some(rcn) = self.rcn {
            if !rcn.allowed_for(self.op, self.is_discovery()) {
                return Err(Error::bad_request(format!(
                    "rcn {rcn:?} not allowed for {:?}",
                    self.op
                )));
            }
        }
        if let Some(ec) = self.ec {
            if !is_event_category(ec) {
                return Err(Error::bad_request(format!(
                    "event category {ec} is not an m2m:eventCat (2, 3, 4 or 100-999)"
                )));
            }
        }
        if self.op == Operation::Create && self.ty.is_none() {
            return Err(Error::bad_request("CREATE needs a resource type"));
        }
        self.check_response_type()?;
        self.fc.validate()
    }

    /// The response types (TS-0004 clause 7.3.2.2, `m2m:responseType`): non-blocking
    /// synchronous (1) and asynchronous (2), blocking (3, the default) and flex-blocking
    /// (4, answered blocking: the receiver chooses). Other values (5, noResponse, is for
    /// 3GPP interworking only) are 4000. Notification targets (`rtu`) belong to `rt` 2
    /// alone (TS-0004 table 6.3.5.30-1): elsewhere 4000.
    fn check_response_type(&self) -> Result<()> {
        match self.rt {
            None | Some(1..=4) => {}
            Some(n) => return Err(Error::bad_request(format!("invalid response type {n}"))),
        }
        if self.rtu.is_some() && self.rt != Some(2) {
            return Err(Error::bad_request(
                "notification targets of a response (X-M2M-RTU) need rt=2",
            ));
        }
        Ok(())
    }

    /// Checks the time-related parameters against `now`, the moment of reception, from which
    /// relative values count (TS-0004 clauses 7.3.2.1 and 7.3.2.6):
    ///
    /// * a Request or Result Expiration Timestamp in the past is 4008 REQUEST_TIMEOUT; a
    ///   Result Expiration Timestamp not later than the Request Expiration Timestamp is 4000
    ///   (TS-0004 Table 6.3.3-1);
    /// * a Result Persistence of none of its forms is 4000;
    /// * an Operation Execution Time in the past (or now) is honoured by executing at once; one
    ///   in the future would have to be held until then, which this CSE does not do: 5001.
    pub fn check_times(&self, now: Timestamp) -> Result<()> {
        let at = |v: &Option<String>| {
            v.as_deref()
                .map(|s| crate::time::parse_abs_rel(s, now))
                .transpose()
        };
        let (rqet, rset, oet) = (at(&self.rqet)?, at(&self.rset)?, at(&self.oet)?);
        if let (Some(rqet), Some(rset)) = (rqet, rset) {
            if rset <= rqet {
                return Err(Error::bad_request(
                    "the result expiration timestamp must be later than the request expiration timestamp",
                ));
            }
        }
        if rqet.is_some_and(|t| t < now) {
            return Err(Error::new(
                ResponseStatusCode::RequestTimeout,
                "request expired before it was processed",
            ));
        }
        if rset.is_some_and(|t| t < now) {
            return Err(Error::new(
                ResponseStatusCode::RequestTimeout,
                "the result expiration timestamp has passed",
            ));
        }
        if let Some(rp) = &self.rp {
            check_result_persistence(rp)?;
        }
        if oet.is_some_and(|t| t > now) && !self.is_non_blocking() {
            return Err(Error::new(
                ResponseStatusCode::NotImplemented,
                "a future operation execution time needs a non-blocking request (rt=1 or 2)",
            ));
        }
        Ok(())
    }
}

/// The forms a Result Persistence (`rp`) may take: a number of milliseconds, an
/// `xs:duration` without years or months (`PT10M`, as TS-0009's example uses), or an
/// absolute timestamp. Anything else is 4000, for every response type.
fn check_result_persistence(rp: &str) -> Result<()> {
    if rp.starts_with('P') {
        crate::time::parse_duration(rp).map(|_| ())
    } else if rp.contains('T') {
        crate::time::parse(rp).map(|_| ())
    } else {
        rp.parse::<u64>().map(|_| ()).map_err(|_| {
            Error::bad_request("result persistence must be milliseconds, a duration or a timestamp")
        })
    }
}

/// A response primitive.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub rsc: ResponseStatusCode,
    /// The request's identifier.
    pub rqi: String,
    /// Content, if any.
    pub pc: Option<Value>,
    /// For CREATE: the address of the new resource (HTTP `Content-Location`).
    pub location: Option<String>,
    /// Originating timestamp of the response.
    pub ot: Option<String>,
    /// Content Status (`cnst`, TS-0004 clause 6.3.4.2.44): set when the CSE cut a RETRIEVE
    /// result at its own limits, so that the originator knows there is more.
    pub cnst: Option<ContentStatus>,
    /// Content Offset (`cnot`): with a partial result, the `ofst` that continues it.
    pub cnot: Option<u64>,
}

/// Whether a RETRIEVE result holds everything that matched (`m2m:contentStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentStatus {
    /// The CSE stopped at one of its limits; continue with `ofst` = `cnot`.
    Partial,
    /// Everything that matched is there.
    Full,
}

impl ContentStatus {
    /// The wire number.
    pub fn code(self) -> u8 {
        match self {
            Self::Partial => 1,
            Self::Full => 2,
        }
    }
}

impl Response {
    /// A response with a status and optional content.
    pub fn new(rsc: ResponseStatusCode, rqi: impl Into<String>, pc: Option<Value>) -> Self {
        Self {
            rsc,
            rqi: rqi.into(),
            pc,
            location: None,
            ot: None,
            cnst: None,
            cnot: None,
        }
    }

    /// The response for a failed request: the status and a debug message (`m2m:dbg`).
    pub fn error(err: &Error, rqi: impl Into<String>) -> Self {
        Self::new(
            err.rsc,
            rqi,
            Some(serde_json::json!({ "m2m:dbg": err.message })),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_content_codes_round_trip() {
        for (rcn, n) in RCN_CODES {
            assert_eq!(rcn.code(), *n);
            assert_eq!(ResultContent::from_code(u64::from(*n)).ok(), Some(*rcn));
        }
        assert!(ResultContent::from_code(7).is_err());
        assert!(ResultContent::from_code(12).is_err());
    }

    #[test]
    fn validation_of_static_parts() {
        let mut r = Request::new(Operation::Create, "cse-in", Some("C".into()));
        assert_eq!(
            r.validate().map_err(|e| e.rsc),
            Err(ResponseStatusCode::BadRequest),
            "CREATE without ty"
        );
        r.ty = Some(ResourceType::Container);
        assert!(r.validate().is_ok());
        for (rt, want) in [
            (3, Ok(())),
            (4, Ok(())),
            (1, Ok(())),
            (2, Ok(())),
            (0, Err(ResponseStatusCode::BadRequest)),
            (5, Err(ResponseStatusCode::BadRequest)),
        ] {
            r.rt = Some(rt);
            assert_eq!(r.validate().map_err(|e| e.rsc), want, "rt={rt}");
        }
        // Notification targets of a result belong to rt=2 alone, an empty list included.
        for (rt, want) in [
            (Some(2), Ok(())),
            (Some(1), Err(ResponseStatusCode::BadRequest)),
            (None, Err(ResponseStatusCode::BadRequest)),
        ] {
            r.rt = rt;
            r.rtu = Some(Vec::new());
            assert_eq!(r.validate().map_err(|e| e.rsc), want, "rt={rt:?}");
        }
        r.rt = None;
        r.rtu = None;
        // TS-0001 table 8.1.2-1, a row per value.
        use ResultContent::*;
        let table: &[(ResultContent, [bool; 5])] = &[
            // Create, Retrieve, Update, Delete, discovery
            (Nothing, [true, false, true, true, false]),
            (Attributes, [true, true, true, true, false]),
            (HierarchicalAddress, [true, false, false, false, false]),
            (
                HierarchicalAddressAndAttributes,
                [true, false, false, false, false],
            ),
            (
                AttributesAndChildResources,
                [false, true, false, true, false],
            ),
            (
                AttributesAndChildResourceReferences,
                [false, true, false, true, false],
            ),
            (ChildResourceReferences, [false, true, false, true, true]),
            (ChildResources, [false, true, false, true, false]),
            (ModifiedAttributes, [true, false, true, false, false]),
            (
                DiscoveryResultReferences,
                [false, false, false, false, true],
            ),
        ];
        for (rcn, allowed) in table {
            let got = [
                rcn.allowed_for(Operation::Create, false),
                rcn.allowed_for(Operation::Retrieve, false),
                rcn.allowed_for(Operation::Update, false),
                rcn.allowed_for(Operation::Delete, false),
                rcn.allowed_for(Operation::Retrieve, true),
            ];
            assert_eq!(&got, allowed, "{rcn:?}");
        }
        let mut d = Request::new(Operation::Delete, "x", None);
        d.rcn = Some(ResultContent::HierarchicalAddress);
        assert!(d.validate().is_err());
    }

    #[test]
    fn time_parameters() {
        let now = crate::time::parse("20261127T101112").expect("valid");
        let check = |rqet: Option<&str>, rset: Option<&str>, oet: Option<&str>| {
            let mut r = Request::new(Operation::Retrieve, "cse-in", Some("C".into()));
            r.rqet = rqet.map(str::to_owned);
            r.rset = rset.map(str::to_owned);
            r.oet = oet.map(str::to_owned);
            r.check_times(now).map_err(|e| e.rsc)
        };
        use ResponseStatusCode as R;
        assert_eq!(check(None, None, None), Ok(()));
        assert_eq!(check(Some("1000"), Some("2000"), Some("0")), Ok(()));
        assert_eq!(
            check(Some("20261127T101111"), None, None),
            Err(R::RequestTimeout)
        );
        assert_eq!(check(Some("-1"), None, None), Err(R::RequestTimeout));
        assert_eq!(check(None, Some("-1"), None), Err(R::RequestTimeout));
        assert_eq!(check(Some("2000"), Some("1000"), None), Err(R::BadRequest));
        assert_eq!(check(None, None, Some("-5000")), Ok(()));
        assert_eq!(check(None, None, Some("1000")), Err(R::NotImplemented));
        // A non-blocking request is held until its operation execution time.
        for rt in [1, 2] {
            let mut r = Request::new(Operation::Retrieve, "cse-in", Some("C".into()));
            r.rt = Some(rt);
            r.oet = Some("1000".into());
            assert_eq!(r.check_times(now).map_err(|e| e.rsc), Ok(()));
        }
        assert_eq!(check(Some("soon"), None, None), Err(R::BadRequest));
        // Result Persistence is checked whatever the response type.
        for (rp, want) in [
            ("PT10M", Ok(())),
            ("600000", Ok(())),
            ("20261127T111112", Ok(())),
            ("P1Y", Err(R::BadRequest)),
            ("-5", Err(R::BadRequest)),
            ("later", Err(R::BadRequest)),
        ] {
            let mut r = Request::new(Operation::Retrieve, "cse-in", Some("C".into()));
            r.rp = Some(rp.into());
            assert_eq!(r.check_times(now).map_err(|e| e.rsc), want, "{rp}");
        }
    }
}
