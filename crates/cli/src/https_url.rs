//! The `--url` of the commands that talk to one of the MEF's own listeners (`m2m enrol`,
//! `m2m enrol-cert`): it must be `https://`, and the project's client reads the rest.

use anyhow::anyhow;
use client::{Client, TlsOptions};

/// A client for `url`, which must be `https://HOST[:PORT]` of the `listener` (named in the
/// message), with `tls`: a bad URL or unusable TLS options are a usage error.
pub fn https_client(url: &str, tls: TlsOptions, listener: &str) -> anyhow::Result<Client> {
    let not_https = || anyhow!("--url must be https://HOST:PORT of the {listener}, not {url}");
    let uri = url.parse::<http::Uri>().map_err(|_| not_https())?;
    if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
        return Err(not_https());
    }
    // The listener's operations have absolute paths: a path in the URL is ignored.
    let authority = uri.authority().map_or("", |a| a.as_str());
    Client::with_tls(&format!("https://{authority}"), tls).map_err(|e| anyhow!("--url {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::https_client;
    use client::{Psk, TlsOptions};

    #[test]
    fn only_https_urls_of_a_listener() {
        let tls = || {
            TlsOptions::new()
                .psk(Psk::from_hex("d", "00112233445566778899aabbccddeeff").expect("psk"))
        };
        for ok in [
            "https://127.0.0.1:8445",
            "HTTPS://[::1]:9/x",
            "https://mef.example",
        ] {
            assert!(
                https_client(ok, tls(), "enrolment listener").is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://127.0.0.1:1",
            "127.0.0.1:1",
            "https://:1",
            "https://h:x",
            "https://h:65536",
            "https://[::1:1",
            "",
        ] {
            let e = https_client(bad, tls(), "enrolment listener").expect_err(bad);
            assert!(e.to_string().contains(bad), "{bad}: {e}");
        }
    }
}
