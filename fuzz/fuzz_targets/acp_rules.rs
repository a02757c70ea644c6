//! The access-control rule parsers (TS-0001 clause 9.6.2): `actw` schedules (cron-like),
//! `acip` address blocks (IPv4/IPv6, CIDR), `aclr` regions, and whole `acr` rules in JSON,
//! each then evaluated, since an ACP created by one originator is evaluated for every other.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use model::resources::acp::ip::{Family, IpBlock};
use model::resources::acp::region::{Location, Region};
use model::resources::acp::schedule::Schedule;
use model::resources::acp::{parse_rule, rules_of, validate_acrs};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            if let Ok(schedule) = Schedule::parse(text) {
                for t in [0, 951_782_400, 1_767_225_599, 4_102_444_800] {
                    if let Some(t) = Utc.timestamp_opt(t, 0).single() {
                        let _ = schedule.matches(t);
                    }
                }
                assert_eq!(Schedule::parse(schedule.as_str()).ok(), Some(schedule));
            }
        }
        1 => {
            let Ok(text) = std::str::from_utf8(bytes) else {
                return;
            };
            for family in [Family::V4, Family::V6] {
                if let Ok(block) = IpBlock::parse(text, family) {
                    for ip in [
                        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        IpAddr::V6(Ipv6Addr::LOCALHOST),
                        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                        IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped()),
                    ] {
                        let _ = block.contains(ip);
                    }
                }
            }
        }
        2 => {
            let floats: Vec<f64> = bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            let codes = std::str::from_utf8(bytes).unwrap_or("").split(' ');
            let here = Location {
                position: floats.first().zip(floats.get(1)).map(|(a, b)| (*a, *b)),
                country: Some("DE".into()),
            };
            for region in [Region::circle(&floats), Region::countries(codes)]
                .into_iter()
                .flatten()
            {
                let _ = region.contains(&here);
            }
        }
        _ => {
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return;
            };
            let accepted = validate_acrs("pv", &value).is_ok();
            if let Ok(rules) = rules_of(&value) {
                for rule in rules {
                    let parsed = parse_rule(rule);
                    if accepted {
                        assert!(parsed.is_ok(), "validated rule that does not parse");
                    }
                }
            }
        }
    }
});
