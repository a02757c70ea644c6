//! Which Dynamic Authorization Systems the CSE may contact (TS-0003 clause 7.3: a DAS is a
//! configured, authorised party, not whatever URL a `<dac>` names).
//!
//! The operator lists the DAS URLs in `dynamic_authorization.das_urls`; a `dap` entry is
//! usable only when it is one of them, compared as a whole (scheme, host, port, path). With
//! nothing listed, no DAS is ever contacted, so a `<dynamicAuthorizationConsultation>`
//! cannot turn the CSE into a client of an arbitrary URL (blind SSRF).
//!
//! A listed URL whose host is a name is also checked when it is used: if the name resolves
//! to a loopback, link-local, unspecified or multicast address, it is refused. Only a URL
//! that writes such an address itself (`http://127.0.0.1:9000/das`, `http://[::1]/das`) or
//! `localhost` lists it explicitly.

use std::net::{IpAddr, SocketAddr};

/// Why a `dap` entry is not contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The URL is not in `dynamic_authorization.das_urls`.
    #[error("not a configured DAS (dynamic_authorization.das_urls)")]
    NotListed,
    /// The URL cannot be read as `http[s]://host[:port]/...`.
    #[error("not an http:// or https:// URL with a host")]
    Malformed,
    /// The host name resolved to an address the operator did not list explicitly.
    #[error("host name resolves to {0}, which only an explicitly listed address may be")]
    InternalAddress(IpAddr),
    /// The host name did not resolve.
    #[error("host name does not resolve: {0}")]
    Unresolved(String),
}

/// The configured allow-list of DAS URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DasUrls(Vec<String>);

impl DasUrls {
    /// The allow-list as configured. Entries are compared exactly (a trailing `/` is
    /// ignored on both sides).
    pub fn new(urls: impl IntoIterator<Item = String>) -> Self {
        Self(urls.into_iter().collect())
    }

    /// The allow-list of a configuration file: every entry an `http://` or `https://` URL
    /// with a host, or the entry that is not.
    pub fn from_config(urls: Vec<String>) -> Result<Self, String> {
        match urls.iter().find(|u| host_port(u).is_none()) {
            Some(bad) => Err(bad.clone()),
            None => Ok(Self(urls)),
        }
    }

    /// Whether nothing is listed (then no DAS is ever contacted).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `url` is one of the listed DAS URLs (no network access).
    pub fn lists(&self, url: &str) -> bool {
        let url = url.trim_end_matches('/');
        self.0.iter().any(|u| u.trim_end_matches('/') == url)
    }

    /// Checks `url` before it is contacted: listed, and a host name that does not resolve
    /// to an internal address.
    pub async fn check(&self, url: &str) -> Result<(), Refused> {
        if !self.lists(url) {
            return Err(Refused::NotListed);
        }
        let (host, port) = host_port(url).ok_or(Refused::Malformed)?;
        if host.parse::<IpAddr>().is_ok() || host.eq_ignore_ascii_case("localhost") {
            return Ok(());
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Refused::Unresolved(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(Refused::Unresolved("no address".into()));
        }
        match addrs.iter().map(SocketAddr::ip).find(|ip| is_internal(*ip)) {
            Some(ip) => Err(Refused::InternalAddress(ip)),
            None => Ok(()),
        }
    }
}

/// Addresses a name must not lead to unless listed as such: loopback, link-local,
/// unspecified, multicast (IPv4-mapped IPv6 counts as its IPv4 address).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast()
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

/// The host (without brackets) and port of an `http[s]://` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let (rest, default_port) = if let Some(r) = url.strip_prefix("https://") {
        (r, 443)
    } else if let Some(r) = url.strip_prefix("http://") {
        (r, 80)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_urls_are_usable() {
        let none = DasUrls::default();
        assert!(!none.lists("http://127.0.0.1:9000/das"));
        let list = DasUrls::new(["https://das.example:8443/das/".to_owned()]);
        assert!(list.lists("https://das.example:8443/das"));
        assert!(list.lists("https://das.example:8443/das/"));
        for other in [
            "https://das.example:8443/das/x",
            "https://das.example:8443/",
            "http://das.example:8443/das",
            "https://das.example:8444/das",
            "https://das.example.evil:8443/das",
            "https://das.example:8443/das?x=1",
        ] {
            assert!(!list.lists(other), "{other}");
        }
    }

    #[test]
    fn configured_entries_must_be_urls() {
        assert!(DasUrls::from_config(vec!["https://das.example/das".into()]).is_ok());
        assert_eq!(
            DasUrls::from_config(vec!["http://a/".into(), "das.example".into()]),
            Err("das.example".to_owned())
        );
    }

    #[test]
    fn hosts_and_ports_are_read() {
        assert_eq!(host_port("http://a.b/x"), Some(("a.b".into(), 80)));
        assert_eq!(host_port("https://a.b"), Some(("a.b".into(), 443)));
        assert_eq!(host_port("http://a.b:81?q"), Some(("a.b".into(), 81)));
        assert_eq!(host_port("http://[::1]:9/x"), Some(("::1".into(), 9)));
        for bad in [
            "ftp://a",
            "http://",
            "http://u@a/",
            "http://a:x/",
            "http://[::1",
        ] {
            assert_eq!(host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.1.1",
        ] {
            assert!(is_internal(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["10.0.0.1", "192.0.2.7", "2001:db8::1"] {
            assert!(!is_internal(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[tokio::test]
    async fn listed_addresses_and_localhost_are_explicit() {
        let list = DasUrls::new([
            "http://localhost:1/das".to_owned(),
            "http://127.0.0.1:1/das".to_owned(),
            "http://localhost.localdomain.invalid:1/das".to_owned(),
        ]);
        assert_eq!(list.check("http://127.0.0.1:1/das").await, Ok(()));
        assert_eq!(list.check("http://localhost:1/das").await, Ok(()));
        assert_eq!(
            list.check("http://127.0.0.2:1/das").await,
            Err(Refused::NotListed)
        );
        // `.invalid` never resolves (RFC 6761).
        assert!(matches!(
            list.check("http://localhost.localdomain.invalid:1/das")
                .await,
            Err(Refused::Unresolved(_))
        ));
    }

    #[tokio::test]
    async fn a_listed_name_that_resolves_to_loopback_is_refused() {
        // The machine's own name resolves to a loopback address on most hosts (/etc/hosts).
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let host = host.trim();
        let loopback = match tokio::net::lookup_host((host, 1)).await {
            Ok(mut a) => a.any(|a| a.ip().is_loopback()),
            Err(_) => false,
        };
        if host.is_empty() || host == "localhost" || !loopback {
            eprintln!("skipped: the host name {host:?} does not resolve to loopback here");
            return;
        }
        let url = format!("http://{host}:1/das");
        let list = DasUrls::new([url.clone()]);
        assert!(matches!(
            list.check(&url).await,
            Err(Refused::InternalAddress(ip)) if ip.is_loopback()
        ));
    }
}
