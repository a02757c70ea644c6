//! The error every layer returns: a status code chosen where the failure is understood,
//! plus a message for the requester's debug output and the log.

use crate::rsc::ResponseStatusCode;
use std::fmt;

/// A failed request. The status code is fixed where the error is made, so the pipeline
/// never has to guess it later; the message says what was wrong without leaking secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The oneM2M response status code this failure is answered with.
    pub rsc: ResponseStatusCode,
    /// A human-readable reason, sent as the response's debug content.
    pub message: String,
}

/// Result alias for the model and everything above it.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $rsc:ident;)*) => {
        impl Error {
            $($(#[$doc])* pub fn $name(message: impl Into<String>) -> Self {
                Self { rsc: ResponseStatusCode::$rsc, message: message.into() }
            })*
        }
    };
}

constructors! {
    /// 4000: malformed request or content.
    bad_request => BadRequest;
    /// 4004: the target does not exist.
    not_found => NotFound;
    /// 4005: operation not allowed on the target.
    operation_not_allowed => OperationNotAllowed;
    /// 4102: valid but unacceptable content.
    contents_unacceptable => ContentsUnacceptable;
    /// 4103: access control denied.
    no_privilege => OriginatorHasNoPrivilege;
    /// 4105: name already taken.
    conflict => Conflict;
    /// 4106: originator not authenticated.
    not_authenticated => OriginatorNotAuthenticated;
    /// 4107: security association required.
    security_association_required => SecurityAssociationRequired;
    /// 4108: child type not allowed.
    invalid_child_type => InvalidChildResourceType;
    /// 5207: the CSE's storage is full, so nothing was written (the request may be sent
    /// again once space returns).
    storage_full => NotAcceptable;
    /// 5000: internal failure.
    internal => InternalServerError;
    /// 5001: the request is valid but asks for something this CSE does not implement.
    not_implemented => NotImplemented;
}

impl Error {
    /// An error with an explicit status code.
    pub fn new(rsc: ResponseStatusCode, message: impl Into<String>) -> Self {
        Self {
            rsc,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rsc, self.message)
    }
}

impl std::error::Error for Error {}
