//! The `--url` of the commands that open their own TLS connection (`m2m enrol`,
//! `m2m enrol-cert`): read with `http::Uri`, like every other URL, rather than by hand.

use anyhow::{anyhow, bail};

/// `https://HOST[:PORT][/...]` to host and port (443 by default; `[v6]` hosts without their
/// brackets); `listener` names what the URL must point at, for the message.
pub fn host_and_port(url: &str, listener: &str) -> anyhow::Result<(String, u16)> {
    let not_https = || anyhow!("--url must be https://HOST:PORT of the {listener}, not {url}");
    let uri: http::Uri = url.parse().map_err(|e| match url.get(..8) {
        Some(s) if s.eq_ignore_ascii_case("https://") => anyhow!("bad URL {url}: {e}"),
        _ => not_https(),
    })?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
        return Err(not_https());
    }
    let Some(authority) = uri.authority() else {
        bail!("no host in {url}");
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        bail!("no host in {url}");
    }
    // `Uri` keeps a port it cannot read as a number; that is an error here.
    let text = authority.as_str();
    let after_host = text
        .rfind(authority.host())
        .map(|i| &text[i + authority.host().len()..]);
    let port = match after_host.and_then(|rest| rest.strip_prefix(':')) {
        None => 443,
        Some(p) => p.parse().map_err(|_| anyhow!("bad port in {url}"))?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn https_urls_give_host_and_port() {
        let ok = |url| host_and_port(url, "enrolment listener").expect(url);
        assert_eq!(ok("https://127.0.0.1:8445"), ("127.0.0.1".to_owned(), 8445));
        assert_eq!(ok("HTTPS://[::1]:9/x"), ("::1".to_owned(), 9));
        assert_eq!(ok("https://mef.example"), ("mef.example".to_owned(), 443));
        for bad in [
            "http://127.0.0.1:1",
            "127.0.0.1:1",
            "https://:1",
            "https://h:x",
            "https://h:65536",
            "https://[::1:1",
            "",
        ] {
            let e = host_and_port(bad, "enrolment listener").expect_err(bad);
            assert!(e.to_string().contains(bad), "{bad}: {e}");
        }
    }
}
