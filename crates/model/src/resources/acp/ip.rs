//! `m2m:ipv4` / `m2m:ipv6` with an optional CIDR prefix (TS-0004 clause 6.3.5.27, RFC 4632
//! and RFC 5952): the address lists of an ACP context (`acip`).
//!
//! Parsing uses the standard library's strict address parsers (no octal, no leading zeros,
//! no zone index). Host bits after the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block: an address and how many leading bits of it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    addr: IpAddr,
    prefix: u8,
}

/// Which list an address came from; each holds one family only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `ipv4`: dotted-decimal.
    V4,
    /// `ipv6`: colon-separated hexadecimal groups.
    V6,
}

impl IpBlock {
    /// Parses one list entry of the given family.
    pub fn parse(s: &str, family: Family) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let (addr, max) = match family {
            Family::V4 => (
                addr.parse::<Ipv4Addr>()
                    .map(IpAddr::V4)
                    .map_err(|_| format!("'{s}' is not an IPv4 address"))?,
                32,
            ),
            Family::V6 => (
                addr.parse::<Ipv6Addr>()
                    .map(IpAddr::V6)
                    .map_err(|_| format!("'{s}' is not an IPv6 address"))?,
                128,
            ),
        };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0 to {max}"))?,
            Some(_) => return Err(format!("'{s}': prefix length must be 0 to {max}")),
        };
        Ok(Self { addr, prefix }.canonical())
    }

    /// An IPv4-mapped IPv6 block (`::ffff:a.b.c.d/n`, n >= 96) is the IPv4 block it maps.
    fn canonical(self) -> Self {
        match self.addr {
            IpAddr::V6(v6) if self.prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => Self {
                    addr: IpAddr::V4(v4),
                    prefix: self.prefix - 96,
                },
                None => self,
            },
            _ => self,
        }
    }

    /// Whether `ip` is in the block. IPv4-mapped IPv6 peers count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpBlock {
        IpBlock::parse(s, Family::V4).expect("valid IPv4")
    }

    fn v6(s: &str) -> IpBlock {
        IpBlock::parse(s, Family::V6).expect("valid IPv6")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid address")
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let net = v4("192.168.1.0/24");
        assert!(net.contains(ip("192.168.1.0")));
        assert!(net.contains(ip("192.168.1.255")));
        assert!(!net.contains(ip("192.168.2.1")));
        assert!(!net.contains(ip("::1")), "other family");
        assert!(net.contains(ip("::ffff:192.168.1.7")), "IPv4-mapped peer");
        let host = v4("10.0.0.1");
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
        assert!(v4("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(
            v4("10.1.2.3/8").contains(ip("10.200.0.1")),
            "host bits ignored"
        );
        let six = v6("2001:db8::/32");
        assert!(six.contains(ip("2001:db8:ffff::1")));
        assert!(!six.contains(ip("2001:db9::1")));
        assert!(!six.contains(ip("10.0.0.1")));
        assert!(v6("::/0").contains(ip("fe80::1")));
        assert!(v6("::1").contains(ip("::1")) && !v6("::1").contains(ip("::2")));
        let mapped = v6("::ffff:10.0.0.0/104");
        assert!(mapped.contains(ip("10.9.9.9")) && !mapped.contains(ip("11.0.0.1")));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for s in [
            "",
            "10.0.0",
            "10.0.0.256",
            "010.0.0.1",
            "10.0.0.1/33",
            "10.0.0.1/",
            "10.0.0.1/-1",
            "10.0.0.1/+8",
            "10.0.0.1/8/8",
            "10.0.0.1 /8",
            "::1",
            "host.example",
        ] {
            assert!(IpBlock::parse(s, Family::V4).is_err(), "{s:?}");
        }
        for s in [
            "",
            "2001:db8::/129",
            "2001:db8:::1",
            "10.0.0.1",
            "fe80::1%eth0",
            "::/",
        ] {
            assert!(IpBlock::parse(s, Family::V6).is_err(), "{s:?}");
        }
    }

    #[test]
    fn displays_as_cidr() {
        assert_eq!(v4("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(v6("::1").to_string(), "::1/128");
    }
}
