//! `<mgmtObj>` (ty 13) and its specialisations for device management (TS-0001 annex D,
//! TS-0004 clause 7.4.15 and annex D). One resource type, one attribute table per
//! management definition (`mgd`): the specialisation decides the attributes, the JSON key
//! (`m2m:fwr`, `m2m:bat`, ...) and which attributes are *executable*: setting one to `true`
//! asks the managed device to act (reboot, install, ...). The CSE itself acts on nothing; it
//! records the request, audits it and tells the subscribers (`cse::resources::mgo`).

use crate::attributes::{attr, Attr, Kind, Presence::*};
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

/// The attributes every specialisation shares (TS-0004 table 7.4.15.1-2). Left out, so that
/// a request setting one is refused (4000): `mgs` (mgmtSchema, only for the self-defined
/// `mgd` 0, which this CSE cannot validate), `cmlk` (mgmtLink, only the CMDH
/// specialisations have it), `at`/`aa` (this CSE announces nothing).
pub const COMMON: &[Attr] = &[
    attr("acpi", Kind::UriList, Optional, Optional),
    attr("daci", Kind::UriList, Optional, Optional),
    attr("mgd", Kind::Int, Mandatory, NotPresent),
    attr("obis", Kind::UriList, Optional, NotPresent),
    attr("obps", Kind::UriList, Optional, NotPresent),
    attr("dc", Kind::Str, Optional, Optional),
];

/// `m2m:status` (TS-0004 table 6.3.4.2.20-1): 0 uninitialized ... 3 in process.
const STATUS: &[u64] = &[0, 1, 2, 3];
/// `m2m:batteryStatus` (table 6.3.4.2.21-1): 1 normal ... 7 unknown.
const BATTERY_STATUS: &[u64] = &[1, 2, 3, 4, 5, 6, 7];
/// `m2m:logTypeId` (table 6.3.4.2.23-1): 1 system ... 5 panic.
const LOG_TYPE: &[u64] = &[1, 2, 3, 4, 5];
/// `m2m:logStatus` (table 6.3.4.2.24-1): 1 started ... 5 error.
const LOG_STATUS: &[u64] = &[1, 2, 3, 4, 5];

/// One specialisation of `<mgmtObj>`: its `mgd`, names, attribute table (besides
/// [`COMMON`]), executable attributes and the pairs of them a request may not both set.
#[derive(Debug, Clone, Copy)]
pub struct Specialisation {
    /// The `mgd` value (TS-0004 table 6.3.4.2.22-1).
    pub mgd: u64,
    /// The specialisation's name, e.g. `firmware`.
    pub name: &'static str,
    /// The JSON key of a representation, e.g. `m2m:fwr`.
    pub wrapper: &'static str,
    /// The specialisation's own attributes (TS-0004 annex D tables).
    pub attributes: &'static [Attr],
    /// Executable attributes: `true` asks the device to act.
    pub actions: &'static [&'static str],
    /// Pairs of actions that cannot be asked for in one request (4000, TS-0004 annex D).
    pub exclusive: &'static [(&'static str, &'static str)],
    /// At most one per `<node>` (TS-0001 table 9.6.18-1, multiplicity 0..1).
    pub one_per_node: bool,
}

/// Every specialisation this CSE hosts: the device management ones, 1001 to 1010. The CMDH
/// (1011 to 1019) and TS-0022 (1020 to 1026) ones and the self-defined (0) are refused.
pub const SPECIALISATIONS: &[Specialisation] = &[
    Specialisation {
        mgd: 1001,
        name: "firmware",
        wrapper: "m2m:fwr",
        attributes: &[
            attr("vr", Kind::Str, Mandatory, Optional),
            attr("fwn", Kind::Str, Mandatory, Optional),
            attr("url", Kind::Uri, Mandatory, Optional),
            attr("ud", Kind::Bool, Mandatory, Optional),
            attr("uds", Kind::ActionStatus, NotPresent, Optional).single(),
        ],
        actions: &["ud"],
        exclusive: &[],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1002,
        name: "software",
        wrapper: "m2m:swr",
        attributes: &[
            attr("vr", Kind::Str, Mandatory, Optional),
            attr("swn", Kind::Str, Mandatory, Optional),
            attr("url", Kind::Uri, Mandatory, Optional),
            attr("in", Kind::Bool, NotPresent, Optional).single(),
            attr("un", Kind::Bool, NotPresent, Optional).single(),
            attr("ins", Kind::ActionStatus, NotPresent, Optional).single(),
            attr("act", Kind::Bool, NotPresent, Optional),
            attr("dea", Kind::Bool, NotPresent, Optional),
            attr("acts", Kind::ActionStatus, NotPresent, Optional),
        ],
        actions: &["in", "un", "act", "dea"],
        exclusive: &[("in", "un"), ("act", "dea")],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1003,
        name: "memory",
        wrapper: "m2m:mem",
        attributes: &[
            attr("mma", Kind::Int, Mandatory, Optional),
            attr("mmt", Kind::Int, Mandatory, Optional),
        ],
        actions: &[],
        exclusive: &[],
        one_per_node: true,
    },
    Specialisation {
        mgd: 1004,
        name: "areaNwkInfo",
        wrapper: "m2m:ani",
        attributes: &[
            attr("ant", Kind::Str, Mandatory, Optional),
            attr("ldv", Kind::UriList, Optional, Optional),
        ],
        actions: &[],
        exclusive: &[],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1005,
        name: "areaNwkDeviceInfo",
        wrapper: "m2m:andi",
        attributes: &[
            attr("dvd", Kind::Str, Mandatory, Optional),
            attr("dvt", Kind::Str, Mandatory, Optional),
            attr("awi", Kind::Uri, Mandatory, Optional),
            attr("sli", Kind::Int, Optional, Optional),
            attr("sld", Kind::Int, Optional, Optional),
            attr("ss", Kind::Str, Optional, Optional),
            attr("lnh", Kind::UriList, Optional, Optional),
        ],
        actions: &[],
        exclusive: &[],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1006,
        name: "battery",
        wrapper: "m2m:bat",
        attributes: &[
            attr("btl", Kind::UpTo(100), Mandatory, Optional),
            attr("bts", Kind::OneOf(BATTERY_STATUS), Mandatory, Optional),
        ],
        actions: &[],
        exclusive: &[],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1007,
        name: "deviceInfo",
        wrapper: "m2m:dvi",
        attributes: &[
            attr("dlb", Kind::Str, Mandatory, Optional),
            attr("man", Kind::Str, Mandatory, NotPresent),
            attr("mfdl", Kind::Str, Optional, Optional),
            attr("mfd", Kind::Time, Optional, NotPresent),
            attr("mod", Kind::Str, Mandatory, NotPresent),
            attr("smod", Kind::Str, Optional, NotPresent),
            attr("dty", Kind::Str, Mandatory, Optional),
            attr("dvnm", Kind::Str, Optional, Optional),
            attr("fwv", Kind::Str, Optional, Optional),
            attr("swv", Kind::Str, Optional, Optional),
            attr("hwv", Kind::Str, Optional, NotPresent),
            attr("osv", Kind::Str, Optional, Optional),
            attr("cnty", Kind::Str, Optional, NotPresent),
            attr("loc", Kind::Str, Optional, Optional),
            attr("syst", Kind::Time, Optional, Optional),
            attr("spur", Kind::Uri, Optional, Optional),
            attr("purl", Kind::Uri, Optional, Optional),
            attr("ptl", Kind::StrList, Optional, Optional),
        ],
        actions: &[],
        exclusive: &[],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1008,
        name: "deviceCapability",
        wrapper: "m2m:dvc",
        attributes: &[
            attr("can", Kind::Str, Mandatory, Optional),
            attr("att", Kind::Bool, Mandatory, Optional),
            attr("cas", Kind::ActionStatus, Mandatory, Optional),
            attr("cus", Kind::Bool, Mandatory, Optional),
            attr("ena", Kind::Bool, Optional, Optional),
            attr("dis", Kind::Bool, Optional, Optional),
        ],
        actions: &["ena", "dis"],
        exclusive: &[("ena", "dis")],
        one_per_node: false,
    },
    Specialisation {
        mgd: 1009,
        name: "reboot",
        wrapper: "m2m:rbo",
        attributes: &[
            attr("rbo", Kind::Bool, Optional, Optional).single(),
            attr("far", Kind::Bool, Optional, Optional).single(),
        ],
        actions: &["rbo", "far"],
        exclusive: &[("rbo", "far")],
        one_per_node: true,
    },
    Specialisation {
        mgd: 1010,
        name: "eventLog",
        wrapper: "m2m:evl",
        attributes: &[
            attr("lgt", Kind::OneOf(LOG_TYPE), Mandatory, Optional),
            attr("lgd", Kind::Str, Mandatory, Optional),
            attr("lgst", Kind::OneOf(LOG_STATUS), Mandatory, Optional),
            attr("lga", Kind::Bool, Optional, Optional).single(),
            attr("lgo", Kind::Bool, Optional, Optional).single(),
        ],
        actions: &["lga", "lgo"],
        exclusive: &[("lga", "lgo")],
        one_per_node: true,
    },
];

/// The generic JSON key of ty 13, used only where no specialisation is known; a stored
/// `<mgmtObj>` is always shown under its specialisation's key.
pub const GENERIC_WRAPPER: &str = "m2m:mgo";

impl Specialisation {
    /// The specialisation of an `mgd` value.
    pub fn of_mgd(mgd: u64) -> Option<&'static Self> {
        SPECIALISATIONS.iter().find(|s| s.mgd == mgd)
    }

    /// The specialisation of a JSON key such as `m2m:bat`.
    pub fn of_wrapper(key: &str) -> Option<&'static Self> {
        SPECIALISATIONS.iter().find(|s| s.wrapper == key)
    }

    /// The specialisation of a stored `<mgmtObj>`'s attributes.
    pub fn of_attrs(attrs: &Map<String, Value>) -> Option<&'static Self> {
        attrs
            .get("mgd")
            .and_then(Value::as_u64)
            .and_then(Self::of_mgd)
    }

    /// Looks up an attribute among [`COMMON`] and this specialisation's.
    pub fn find(&self, name: &str) -> Option<&'static Attr> {
        COMMON
            .iter()
            .chain(self.attributes)
            .find(|a| a.name == name)
    }

    /// The actions a request's attributes ask for: executable attributes set to `true`.
    /// Two of an exclusive pair together are refused (4000, TS-0004 annex D.3, D.9, D.10
    /// and D.11).
    pub fn requested_actions(&self, attrs: &Map<String, Value>) -> Result<Vec<&'static str>> {
        let asked: Vec<&'static str> = self
            .actions
            .iter()
            .copied()
            .filter(|a| attrs.get(*a) == Some(&Value::Bool(true)))
            .collect();
        if let Some((a, b)) = self
            .exclusive
            .iter()
            .find(|(a, b)| asked.contains(a) && asked.contains(b))
        {
            return Err(Error::bad_request(format!(
                "{}: '{a}' and '{b}' cannot both be set to true in one request",
                self.name
            )));
        }
        Ok(asked)
    }

    /// Checks a CREATE's attributes after the table check: `mgd` must be this
    /// specialisation's (it was read from the JSON key), and no action may be asked for (a
    /// CREATE is not an execution request: an executable attribute starts `false`).
    pub fn check_create(&self, attrs: &Map<String, Value>) -> Result<()> {
        match attrs.get("mgd").and_then(Value::as_u64) {
            Some(mgd) if mgd == self.mgd => {}
            Some(mgd) => {
                return Err(Error::bad_request(format!(
                    "mgd {mgd} contradicts {} (mgd {} is {})",
                    self.wrapper, self.mgd, self.name
                )))
            }
            None => return Err(Error::bad_request("missing mandatory attribute 'mgd'")),
        }
        if let Some(a) = self
            .actions
            .iter()
            .find(|a| attrs.get(**a) == Some(&Value::Bool(true)))
        {
            return Err(Error::bad_request(format!(
                "'{a}' asks for an action: it can only be set to true by an UPDATE"
            )));
        }
        Ok(())
    }

    /// The values the CSE gives a new resource for what the CREATE left out: the executable
    /// attributes of multiplicity 1 `false` (nothing asked yet) and the status attributes of
    /// multiplicity 1 "uninitialized".
    pub fn defaults(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for a in self.attributes.iter().filter(|a| a.single) {
            if self.actions.contains(&a.name) {
                m.insert(a.name.to_owned(), json!(false));
            } else if a.kind == Kind::ActionStatus {
                m.insert(a.name.to_owned(), json!({"sus": STATUS[0]}));
            }
        }
        m
    }
}

/// Checks an `m2m:actionStatus` (TS-0004 table 6.3.5.14-1): an object with at most `acn` (a
/// URI naming the action) and `sus` (an `m2m:status`, 0 to 3).
pub fn is_action_status(v: &Value) -> bool {
    let Some(obj) = v.as_object() else {
        return false;
    };
    obj.iter().all(|(k, v)| match k.as_str() {
        "acn" => v
            .as_str()
            .is_some_and(|s| !s.chars().any(char::is_whitespace)),
        "sus" => v.as_u64().is_some_and(|n| STATUS.contains(&n)),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn every_specialisation_is_found_by_mgd_and_key() {
        let mut seen = std::collections::HashSet::new();
        for s in SPECIALISATIONS {
            assert!(seen.insert(s.mgd));
            assert_eq!(Specialisation::of_mgd(s.mgd).map(|x| x.name), Some(s.name));
            assert_eq!(
                Specialisation::of_wrapper(s.wrapper).map(|x| x.mgd),
                Some(s.mgd)
            );
            for a in s.actions {
                assert_eq!(s.find(a).map(|x| x.kind), Some(Kind::Bool), "{a}");
            }
            for (a, b) in s.exclusive {
                assert!(s.actions.contains(a) && s.actions.contains(b));
            }
        }
        assert_eq!(seen.len(), 10);
        assert!(Specialisation::of_mgd(0).is_none());
        assert!(Specialisation::of_mgd(1011).is_none());
        assert!(Specialisation::of_wrapper(GENERIC_WRAPPER).is_none());
    }

    #[test]
    fn exclusive_actions_are_refused_together() {
        let rbo = Specialisation::of_mgd(1009).expect("reboot");
        assert_eq!(
            rbo.requested_actions(&map(json!({"rbo": true}))).ok(),
            Some(vec!["rbo"])
        );
        assert_eq!(
            rbo.requested_actions(&map(json!({"rbo": false, "far": true})))
                .ok(),
            Some(vec!["far"])
        );
        assert!(rbo
            .requested_actions(&map(json!({"rbo": true, "far": true})))
            .is_err());
        let swr = Specialisation::of_mgd(1002).expect("software");
        assert!(swr
            .requested_actions(&map(json!({"in": true, "un": true})))
            .is_err());
        assert_eq!(
            swr.requested_actions(&map(json!({"in": true, "act": true})))
                .ok(),
            Some(vec!["in", "act"])
        );
    }

    #[test]
    fn a_create_cannot_contradict_its_key_or_ask_for_an_action() {
        let bat = Specialisation::of_mgd(1006).expect("battery");
        assert!(bat.check_create(&map(json!({"mgd": 1006}))).is_ok());
        assert!(bat.check_create(&map(json!({"mgd": 1009}))).is_err());
        let fwr = Specialisation::of_mgd(1001).expect("firmware");
        assert!(fwr
            .check_create(&map(json!({"mgd": 1001, "ud": false})))
            .is_ok());
        assert!(fwr
            .check_create(&map(json!({"mgd": 1001, "ud": true})))
            .is_err());
        assert_eq!(fwr.defaults(), map(json!({"ud": false, "uds": {"sus": 0}})));
        let rbo = Specialisation::of_mgd(1009).expect("reboot");
        assert_eq!(rbo.defaults(), map(json!({"rbo": false, "far": false})));
    }

    #[test]
    fn action_status_values() {
        assert!(is_action_status(&json!({})));
        assert!(is_action_status(&json!({"acn": "rbo", "sus": 3})));
        for bad in [
            json!({"sus": 4}),
            json!({"sus": "1"}),
            json!({"acn": "a b"}),
            json!({"x": 1}),
            json!([1]),
            json!("done"),
        ] {
            assert!(!is_action_status(&bad), "{bad}");
        }
    }
}
