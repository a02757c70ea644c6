//! Operations and resource types: the small enums the whole CSE speaks in.

use crate::error::{Error, Result};

/// A oneM2M operation (`op`, TS-0004 clause 6.3.4.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1: create a child of the target.
    Create,
    /// 2: read the target (or discover below it).
    Retrieve,
    /// 3: change attributes of the target.
    Update,
    /// 4: remove the target and its subtree.
    Delete,
    /// 5: deliver a notification to the target.
    Notify,
}

impl Operation {
    /// The wire number of the operation.
    pub fn code(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::Retrieve => 2,
            Self::Update => 3,
            Self::Delete => 4,
            Self::Notify => 5,
        }
    }

    /// The operation for a wire number.
    pub fn from_code(n: u64) -> Result<Self> {
        Ok(match n {
            1 => Self::Create,
            2 => Self::Retrieve,
            3 => Self::Update,
            4 => Self::Delete,
            5 => Self::Notify,
            _ => return Err(Error::bad_request(format!("unknown operation {n}"))),
        })
    }
}

/// The `acop` bit for an operation; discovery is a RETRIEVE with `fu=1` and has its own bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessOperation(pub u8);

impl AccessOperation {
    /// CREATE bit.
    pub const CREATE: Self = Self(1);
    /// RETRIEVE bit.
    pub const RETRIEVE: Self = Self(2);
    /// UPDATE bit.
    pub const UPDATE: Self = Self(4);
    /// DELETE bit.
    pub const DELETE: Self = Self(8);
    /// NOTIFY bit.
    pub const NOTIFY: Self = Self(16);
    /// DISCOVERY bit.
    pub const DISCOVERY: Self = Self(32);
    /// Every bit: what the creator gets under the default policy.
    pub const ALL: Self = Self(63);

    /// True when `acop` (a bitmask) grants this operation.
    pub fn granted_by(self, acop: u64) -> bool {
        acop & u64::from(self.0) == u64::from(self.0)
    }
}

/// The resource types this CSE hosts (TS-0004 clause 6.3.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    /// 1 `acp`: access control policy.
    AccessControlPolicy,
    /// 2 `ae`: application entity.
    Ae,
    /// 3 `cnt`: container.
    Container,
    /// 4 `cin`: content instance.
    ContentInstance,
    /// 5 `cb`: the CSE's root.
    CseBase,
    /// 9 `grp`: group.
    Group,
    /// 11 `mssp`: M2M service subscription profile, the subscriber's contract; holds its
    /// `<serviceSubscribedNode>`s.
    M2mServiceSubscriptionProfile,
    /// 13 `mgo`: management object, shown under its specialisation's key (`m2m:fwr`,
    /// `m2m:bat`, ...) as its `mgd` says (`resources::mgo`).
    MgmtObj,
    /// 14 `nod`: node, the device that management objects describe.
    Node,
    /// 15 `pch`: polling channel, through which a request-unreachable AE collects the
    /// requests (notifications) addressed to it.
    PollingChannel,
    /// 17 `req`: the context and result of a non-blocking request, created by the CSE
    /// itself (never through the API) for its originator to fetch.
    Request,
    /// 19 `asar`: service subscribed App rule: which App-IDs and AE-IDs the credentials it
    /// names may register.
    ServiceSubscribedAppRule,
    /// 20 `svsn`: service subscribed node: one node of a subscription, linking the rules
    /// that govern AE registration on its CSE.
    ServiceSubscribedNode,
    /// 23 `sub`: subscription.
    Subscription,
    /// 28 `fcnt`: flexContainer, whose data are custom attributes of a specialisation
    /// named by `cnd` (its JSON key is the specialisation's, e.g. `cod:binSh`).
    FlexContainer,
    /// 29 `ts`: time series, a container of periodic data points whose missing points
    /// the CSE can detect and report.
    TimeSeries,
    /// 30 `tsi`: one data point of a time series, unique by its data generation time.
    TimeSeriesInstance,
    /// 31 `rol`: a Role-ID assigned to one AE or CSE for a period (TS-0003 clause 7.4).
    Role,
    /// 32 `tk`: a token kept for its holder to name by Token-ID (TS-0003 clause 7.4).
    Token,
    /// 34 `dac`: dynamic authorization consultation (where to ask a DAS).
    DynamicAuthorizationConsultation,
    /// 48 `crs`: cross-resource subscription, one notification when events on all of
    /// several resources happen within a time window.
    CrossResourceSubscription,
    /// 35 `auds`: authorization decision, where a PEP asks this CSE's PDP for a decision
    /// (TS-0003 clause 7.5.2).
    AuthorizationDecision,
    /// 36 `aupy`: authorization policy, where a PDP asks this CSE's PRP for the policies
    /// that apply to a target (TS-0003 clause 7.5.3).
    AuthorizationPolicy,
    /// 37 `auif`: authorization information, where a PDP asks this CSE's PIP for the
    /// roles and tokens of an originator (TS-0003 clause 7.5.4).
    AuthorizationInformation,
    /// 18 `sch`: schedule, the time windows of its parent: when a subscription may notify,
    /// when a node can be reached.
    Schedule,
    /// 24 `smd`: semantic descriptor, RDF triples (checked on write) describing its parent.
    SemanticDescriptor,
    /// 26 `ntp`: notification target policy, what the CSE does when a notification target
    /// asks to leave a subscription (TS-0001 clause 10.2.10.8).
    NotificationTargetPolicy,
    /// 27 `pdr`: policy deletion rules, one group of the rules under which a notification
    /// target policy's action is taken.
    PolicyDeletionRules,
    /// 10 `lcp`: location policy, how a node's location is obtained and the `<container>`
    /// its positions are kept in.
    LocationPolicy,
}

impl ResourceType {
    /// Every type, for tables and tests.
    pub const ALL: [Self; 29] = [
        Self::AccessControlPolicy,
        Self::Ae,
        Self::Container,
        Self::ContentInstance,
        Self::CseBase,
        Self::Group,
        Self::M2mServiceSubscriptionProfile,
        Self::MgmtObj,
        Self::Node,
        Self::PollingChannel,
        Self::Request,
        Self::ServiceSubscribedAppRule,
        Self::ServiceSubscribedNode,
        Self::Subscription,
        Self::FlexContainer,
        Self::TimeSeries,
        Self::TimeSeriesInstance,
        Self::Role,
        Self::Token,
        Self::DynamicAuthorizationConsultation,
        Self::CrossResourceSubscription,
        Self::AuthorizationDecision,
        Self::AuthorizationPolicy,
        Self::AuthorizationInformation,
        Self::Schedule,
        Self::SemanticDescriptor,
        Self::NotificationTargetPolicy,
        Self::PolicyDeletionRules,
        Self::LocationPolicy,
    ];

    /// The `ty` number.
    pub fn code(self) -> u16 {
        match self {
            Self::AccessControlPolicy => 1,
            Self::Ae => 2,
            Self::Container => 3,
            Self::ContentInstance => 4,
            Self::CseBase => 5,
            Self::Group => 9,
            Self::MgmtObj => 13,
            Self::Node => 14,
            Self::M2mServiceSubscriptionProfile => 11,
            Self::ServiceSubscribedAppRule => 19,
            Self::ServiceSubscribedNode => 20,
            Self::PollingChannel => 15,
            Self::Request => 17,
            Self::Subscription => 23,
            Self::FlexContainer => 28,
            Self::TimeSeries => 29,
            Self::TimeSeriesInstance => 30,
            Self::Role => 31,
            Self::Token => 32,
            Self::DynamicAuthorizationConsultation => 34,
            Self::CrossResourceSubscription => 48,
            Self::AuthorizationDecision => 35,
            Self::AuthorizationPolicy => 36,
            Self::AuthorizationInformation => 37,
            Self::Schedule => 18,
            Self::SemanticDescriptor => 24,
            Self::NotificationTargetPolicy => 26,
            Self::PolicyDeletionRules => 27,
            Self::LocationPolicy => 10,
        }
    }

    /// The type for a `ty` number; unknown numbers are a bad request.
    pub fn from_code(n: u64) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| u64::from(t.code()) == n)
            .ok_or_else(|| Error::bad_request(format!("unsupported resource type {n}")))
    }

    /// The short name used as JSON key without the `m2m:` prefix (`cnt`, `cin`, ...).
    pub fn short_name(self) -> &'static str {
        match self {
            Self::AccessControlPolicy => "acp",
            Self::Ae => "ae",
            Self::Container => "cnt",
            Self::ContentInstance => "cin",
            Self::CseBase => "cb",
            Self::Group => "grp",
            Self::MgmtObj => "mgo",
            Self::Node => "nod",
            Self::M2mServiceSubscriptionProfile => "mssp",
            Self::ServiceSubscribedAppRule => "asar",
            Self::ServiceSubscribedNode => "svsn",
            Self::PollingChannel => "pch",
            Self::Request => "req",
            Self::Subscription => "sub",
            Self::FlexContainer => "fcnt",
            Self::TimeSeries => "ts",
            Self::TimeSeriesInstance => "tsi",
            Self::Role => "rol",
            Self::Token => "tk",
            Self::DynamicAuthorizationConsultation => "dac",
            Self::CrossResourceSubscription => "crs",
            Self::AuthorizationDecision => "auds",
            Self::AuthorizationPolicy => "aupy",
            Self::AuthorizationInformation => "auif",
            Self::Schedule => "sch",
            Self::SemanticDescriptor => "smd",
            Self::NotificationTargetPolicy => "ntp",
            Self::PolicyDeletionRules => "pdr",
            Self::LocationPolicy => "lcp",
        }
    }

    /// The JSON wrapper key of a resource representation (`m2m:cnt`). A flexContainer's is
    /// its specialisation's ([`crate::Resource::wrapper`]); `m2m:fcnt` stands for the type only.
    pub fn wrapper(self) -> &'static str {
        match self {
            Self::AccessControlPolicy => "m2m:acp",
            Self::Ae => "m2m:ae",
            Self::Container => "m2m:cnt",
            Self::ContentInstance => "m2m:cin",
            Self::CseBase => "m2m:cb",
            Self::Group => "m2m:grp",
            Self::MgmtObj => crate::resources::mgo::GENERIC_WRAPPER,
            Self::Node => "m2m:nod",
            Self::M2mServiceSubscriptionProfile => "m2m:mssp",
            Self::ServiceSubscribedAppRule => "m2m:asar",
            Self::ServiceSubscribedNode => "m2m:svsn",
            Self::PollingChannel => "m2m:pch",
            Self::Request => "m2m:req",
            Self::Subscription => "m2m:sub",
            Self::FlexContainer => "m2m:fcnt",
            Self::TimeSeries => "m2m:ts",
            Self::TimeSeriesInstance => "m2m:tsi",
            Self::Role => "m2m:rol",
            Self::Token => "m2m:tk",
            Self::DynamicAuthorizationConsultation => "m2m:dac",
            Self::CrossResourceSubscription => "m2m:crs",
            Self::AuthorizationDecision => "m2m:auds",
            Self::AuthorizationPolicy => "m2m:aupy",
            Self::AuthorizationInformation => "m2m:auif",
            Self::Schedule => "m2m:sch",
            Self::SemanticDescriptor => "m2m:smd",
            Self::NotificationTargetPolicy => "m2m:ntp",
            Self::PolicyDeletionRules => "m2m:pdr",
            Self::LocationPolicy => "m2m:lcp",
        }
    }

    /// The type for a wrapper key; a specialisation's key (`m2m:bat`) is a `<mgmtObj>`.
    pub fn from_wrapper(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.wrapper() == key)
            .or_else(|| {
                crate::resources::mgo::Specialisation::of_wrapper(key).map(|_| Self::MgmtObj)
            })
    }

    /// Which child types may be created under this type (TS-0004 resource definitions).
    pub fn allowed_children(self) -> &'static [ResourceType] {
        use ResourceType::*;
        match self {
            CseBase => &[
                AccessControlPolicy,
                Ae,
                Container,
                Group,
                Node,
                Subscription,
                FlexContainer,
                TimeSeries,
                DynamicAuthorizationConsultation,
                M2mServiceSubscriptionProfile,
                ServiceSubscribedAppRule,
                Role,
                Token,
                CrossResourceSubscription,
                AuthorizationDecision,
                AuthorizationPolicy,
                AuthorizationInformation,
                Schedule,
                NotificationTargetPolicy,
                LocationPolicy,
            ],
            Ae => &[
                AccessControlPolicy,
                Container,
                Group,
                PollingChannel,
                Subscription,
                FlexContainer,
                TimeSeries,
                DynamicAuthorizationConsultation,
                CrossResourceSubscription,
                SemanticDescriptor,
            ],
            Container => &[
                Container,
                ContentInstance,
                Subscription,
                FlexContainer,
                TimeSeries,
                SemanticDescriptor,
            ],
            FlexContainer => &[Container, Subscription, FlexContainer, SemanticDescriptor],
            TimeSeries => &[TimeSeriesInstance, Subscription, SemanticDescriptor],
            Group => &[Subscription, SemanticDescriptor],
            Node => &[MgmtObj, Subscription, Schedule, SemanticDescriptor],
            MgmtObj => &[Subscription, SemanticDescriptor],
            M2mServiceSubscriptionProfile => &[ServiceSubscribedNode, Subscription],
            ServiceSubscribedNode | ServiceSubscribedAppRule => &[Subscription],
            AccessControlPolicy
            | DynamicAuthorizationConsultation
            | Role
            | Token
            | AuthorizationDecision
            | AuthorizationPolicy
            | AuthorizationInformation
            | LocationPolicy => &[Subscription],
            Subscription => &[Schedule],
            Schedule | SemanticDescriptor => &[Subscription],
            NotificationTargetPolicy => &[PolicyDeletionRules, Subscription],
            PolicyDeletionRules => &[Subscription],
            ContentInstance
            | PollingChannel
            | Request
            | TimeSeriesInstance
            | CrossResourceSubscription => &[],
        }
    }

    /// True when resources of this type carry their own `acpi`. A `<pollingChannel>` has
    /// none (TS-0004 table 7.4.21.1-2): its parent `<AE>`'s policies govern it.
    pub fn has_acpi(self) -> bool {
        !matches!(
            self,
            Self::ContentInstance
                | Self::TimeSeriesInstance
                | Self::AccessControlPolicy
                | Self::PollingChannel
        )
    }

    /// The type of the data items a holder keeps and counts (`cni`, `cbs`), that `la` and
    /// `ol` stand for and that `mni`/`mbs`/`mia` prune: content instances in a
    /// `<container>`, time series instances in a `<timeSeries>`.
    pub fn instance_type(self) -> Option<Self> {
        match self {
            Self::Container => Some(Self::ContentInstance),
            Self::TimeSeries => Some(Self::TimeSeriesInstance),
            _ => None,
        }
    }

    /// True for the immutable data items of a holder ([`Self::instance_type`]): never
    /// updated, counted by their parent, the bulk of the data.
    pub fn is_instance(self) -> bool {
        matches!(self, Self::ContentInstance | Self::TimeSeriesInstance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip() {
        for t in ResourceType::ALL {
            assert_eq!(ResourceType::from_code(u64::from(t.code())).ok(), Some(t));
            assert_eq!(ResourceType::from_wrapper(t.wrapper()), Some(t));
        }
        assert!(ResourceType::from_code(77).is_err());
    }

    #[test]
    fn acop_bits() {
        assert!(AccessOperation::RETRIEVE.granted_by(63));
        assert!(!AccessOperation::DELETE.granted_by(2 | 4));
    }
}
