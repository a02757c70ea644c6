//! Response status codes (TS-0004 clause 6.6.3): the one enum every error in the project maps to.

use std::fmt;

/// A oneM2M Response Status Code. Every failure in the CSE ends as exactly one of these,
/// and each binding has one table from it to its own status (HTTP, CoAP, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseStatusCode {
    /// 1000: the request is accepted but its processing is not complete (the CSE answers an
    /// admin withdrawal with it when the withdrawal is in force but not yet on disk).
    Accepted,
    /// 1001: a non-blocking synchronous request (`rt=1`) is accepted; its result is kept
    /// in the `<request>` resource the answer names (TS-0004 clause 7.3.2.3).
    AcceptedNonBlockingSynch,
    /// 1002: a non-blocking asynchronous request (`rt=2`) is accepted; its result is also
    /// sent as a notification (TS-0004 clause 7.5.1.2.5).
    AcceptedNonBlockingAsynch,
    /// 2000: the request succeeded (RETRIEVE, NOTIFY, discovery).
    Ok,
    /// 2001: a resource was created.
    Created,
    /// 2002: a resource was deleted.
    Deleted,
    /// 2004: a resource was updated.
    Updated,
    /// 4000: the request is malformed or breaks a rule about its content.
    BadRequest,
    /// 4001: the request's release version is not one this CSE speaks.
    ReleaseVersionNotSupported,
    /// 4004: the target resource does not exist.
    NotFound,
    /// 4005: the operation is not allowed on this target.
    OperationNotAllowed,
    /// 4008: the request expired before it could be processed.
    RequestTimeout,
    /// 4015: the content type is not supported.
    UnsupportedMediaType,
    /// 4101: the subscription's creator lacks the privilege to be notified.
    SubscriptionCreatorHasNoPrivilege,
    /// 4102: the content is syntactically valid but not acceptable (e.g. over a container limit).
    ContentsUnacceptable,
    /// 4103: access control denied the request.
    OriginatorHasNoPrivilege,
    /// 4104: a group request with this identifier already exists.
    GroupRequestIdentifierExists,
    /// 4105: a resource with this name already exists under the parent.
    Conflict,
    /// 4106: the originator does not match the authenticated (or registered) identity.
    OriginatorNotAuthenticated,
    /// 4107: the request needs a security association that it did not arrive over.
    SecurityAssociationRequired,
    /// 4108: this resource type may not be created under that parent.
    InvalidChildResourceType,
    /// 4109: the group has no members.
    NoMembers,
    /// 4110: a group member is not of the group's member type.
    GroupMemberTypeInconsistent,
    /// 4117: the AE-ID is already registered.
    OriginatorHasAlreadyRegistered,
    /// 4124: the subscribed-to resource already has a blocking-update subscription.
    BlockingSubscriptionAlreadyExists,
    /// 4125: a `<flexContainer>`'s containerDefinition (`cnd`) names a specialisation this
    /// CSE has no schema for.
    SpecializationSchemaNotFound,
    /// 4126: the service subscription rules do not allow this registration.
    AppRuleValidationFailed,
    /// 4127: a remote entity refused the operation.
    OperationDeniedByRemoteEntity,
    /// 5000: an internal error on the CSE side; details are only in the log.
    InternalServerError,
    /// 5001: the feature is not implemented.
    NotImplemented,
    /// 5103: the target is not reachable.
    TargetNotReachable,
    /// 5105: the receiver may not read what the request needs it to (a group member whose
    /// type must be checked).
    ReceiverHasNoPrivilege,
    /// 5106: the resource already exists.
    AlreadyExists,
    /// 5107: a remote entity this request depends on (a blocking-update notification
    /// target) was not reached.
    RemoteEntityNotReachable,
    /// 5203: the target cannot be subscribed to.
    TargetNotSubscribable,
    /// 5204: the verification request of a new subscription failed.
    SubscriptionVerificationInitiationFailed,
    /// 5206: a non-blocking synchronous request (`rt=1`) needs `<request>` resources, which
    /// this CSE does not host (TS-0004 clause 7.3.2.2, creation of `<request>`).
    NonBlockingSynchRequestNotSupported,
    /// 5207: the request cannot be accepted: it cannot be answered in an acceptable form,
    /// its content does not fit the container, or the CSE's storage is full (nothing was
    /// written; the same request can succeed once space returns).
    NotAcceptable,
    /// 5220: a `<request>` whose operation has already started cannot be cancelled
    /// (TS-0004 clause 7.4.12.2.4).
    UnableToRecallRequest,
    /// 5209: some group members did not respond.
    GroupMembersNotResponded,
    /// 5221: a `<crossResourceSubscription>` could not make or join the subscription of
    /// one of its targets (TS-0004 clause 7.4.58.2.1).
    CrossResourceOperationFailure,
    /// 6003: an external object is not reachable.
    ExternalObjectNotReachable,
    /// 6010: a group would hold more members than its `mnm`.
    MaxNumberOfMemberExceeded,
}

use ResponseStatusCode as R;

/// Every code with its number and name, in one table (tests walk it).
pub const ALL_CODES: &[(ResponseStatusCode, u16, &str)] = &[
    (R::Accepted, 1000, "ACCEPTED"),
    (
        R::AcceptedNonBlockingSynch,
        1001,
        "ACCEPTED_NON_BLOCKING_REQUEST_SYNCH",
    ),
    (
        R::AcceptedNonBlockingAsynch,
        1002,
        "ACCEPTED_NON_BLOCKING_REQUEST_ASYNCH",
    ),
    (R::Ok, 2000, "OK"),
    (R::Created, 2001, "CREATED"),
    (R::Deleted, 2002, "DELETED"),
    (R::Updated, 2004, "UPDATED"),
    (R::BadRequest, 4000, "BAD_REQUEST"),
    (
        R::ReleaseVersionNotSupported,
        4001,
        "RELEASE_VERSION_NOT_SUPPORTED",
    ),
    (R::NotFound, 4004, "NOT_FOUND"),
    (R::OperationNotAllowed, 4005, "OPERATION_NOT_ALLOWED"),
    (R::RequestTimeout, 4008, "REQUEST_TIMEOUT"),
    (R::UnsupportedMediaType, 4015, "UNSUPPORTED_MEDIA_TYPE"),
    (
        R::SubscriptionCreatorHasNoPrivilege,
        4101,
        "SUBSCRIPTION_CREATOR_HAS_NO_PRIVILEGE",
    ),
    (R::ContentsUnacceptable, 4102, "CONTENTS_UNACCEPTABLE"),
    (
        R::OriginatorHasNoPrivilege,
        4103,
        "ORIGINATOR_HAS_NO_PRIVILEGE",
    ),
    (
        R::GroupRequestIdentifierExists,
        4104,
        "GROUP_REQUEST_IDENTIFIER_EXISTS",
    ),
    (R::Conflict, 4105, "CONFLICT"),
    (
        R::OriginatorNotAuthenticated,
        4106,
        "ORIGINATOR_NOT_AUTHENTICATED",
    ),
    (
        R::SecurityAssociationRequired,
        4107,
        "SECURITY_ASSOCIATION_REQUIRED",
    ),
    (
        R::InvalidChildResourceType,
        4108,
        "INVALID_CHILD_RESOURCE_TYPE",
    ),
    (R::NoMembers, 4109, "NO_MEMBERS"),
    (
        R::GroupMemberTypeInconsistent,
        4110,
        "GROUP_MEMBER_TYPE_INCONSISTENT",
    ),
    (
        R::OriginatorHasAlreadyRegistered,
        4117,
        "ORIGINATOR_HAS_ALREADY_REGISTERED",
    ),
    (
        R::BlockingSubscriptionAlreadyExists,
        4124,
        "BLOCKING_SUBSCRIPTION_ALREADY_EXISTS",
    ),
    (
        R::SpecializationSchemaNotFound,
        4125,
        "SPECIALIZATION_SCHEMA_NOT_FOUND",
    ),
    (
        R::AppRuleValidationFailed,
        4126,
        "APP_RULE_VALIDATION_FAILED",
    ),
    (
        R::OperationDeniedByRemoteEntity,
        4127,
        "OPERATION_DENIED_BY_REMOTE_ENTITY",
    ),
    (R::InternalServerError, 5000, "INTERNAL_SERVER_ERROR"),
    (R::NotImplemented, 5001, "NOT_IMPLEMENTED"),
    (R::TargetNotReachable, 5103, "TARGET_NOT_REACHABLE"),
    (R::ReceiverHasNoPrivilege, 5105, "RECEIVER_HAS_NO_PRIVILEGE"),
    (R::AlreadyExists, 5106, "ALREADY_EXISTS"),
    (
        R::RemoteEntityNotReachable,
        5107,
        "REMOTE_ENTITY_NOT_REACHABLE",
    ),
    (R::TargetNotSubscribable, 5203, "TARGET_NOT_SUBSCRIBABLE"),
    (
        R::SubscriptionVerificationInitiationFailed,
        5204,
        "SUBSCRIPTION_VERIFICATION_INITIATION_FAILED",
    ),
    (
        R::NonBlockingSynchRequestNotSupported,
        5206,
        "NON_BLOCKING_SYNCH_REQUEST_NOT_SUPPORTED",
    ),
    (R::NotAcceptable, 5207, "NOT_ACCEPTABLE"),
    (R::UnableToRecallRequest, 5220, "UNABLE_TO_RECALL_REQUEST"),
    (
        R::GroupMembersNotResponded,
        5209,
        "GROUP_MEMBERS_NOT_RESPONDED",
    ),
    (
        R::CrossResourceOperationFailure,
        5221,
        "CROSS_RESOURCE_OPERATION_FAILURE",
    ),
    (
        R::ExternalObjectNotReachable,
        6003,
        "EXTERNAL_OBJECT_NOT_REACHABLE",
    ),
    (
        R::MaxNumberOfMemberExceeded,
        6010,
        "MAX_NUMBER_OF_MEMBER_EXCEEDED",
    ),
];

impl ResponseStatusCode {
    /// The numeric code carried in `rsc` / `X-M2M-RSC`.
    pub fn code(self) -> u16 {
        ALL_CODES
            .iter()
            .find(|(c, ..)| *c == self)
            .map_or(5000, |(_, n, _)| *n)
    }

    /// The code for a number, if this CSE knows it.
    pub fn from_code(n: u16) -> Option<Self> {
        ALL_CODES.iter().find(|(_, c, _)| *c == n).map(|(r, ..)| *r)
    }

    /// The spec's upper-case name, for logs and debug messages.
    pub fn name(self) -> &'static str {
        ALL_CODES
            .iter()
            .find(|(c, ..)| *c == self)
            .map_or("UNKNOWN", |(.., s)| *s)
    }

    /// True for 2xxx codes.
    pub fn is_success(self) -> bool {
        (2000..3000).contains(&self.code())
    }
}

impl fmt::Display for ResponseStatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_is_unique() {
        for (rsc, n, name) in ALL_CODES {
            assert_eq!(rsc.code(), *n);
            assert_eq!(ResponseStatusCode::from_code(*n), Some(*rsc));
            assert_eq!(rsc.name(), *name);
        }
        let mut ns: Vec<u16> = ALL_CODES.iter().map(|(_, n, _)| *n).collect();
        ns.sort_unstable();
        ns.dedup();
        assert_eq!(ns.len(), ALL_CODES.len());
    }
}
