//! The cipher suites a listener offers, in server preference order, in one place.
//!
//! TS-0003 clause 10.2 makes one suite mandatory per framework, and an IN-CSE server must
//! offer all of them: `TLS_PSK_WITH_AES_128_CBC_SHA256` (PSK) and
//! `TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256` (certificates). The others are stronger suites
//! of the same key exchanges, preferred when a client offers them. Nothing here uses RSA key
//! exchange, NULL or export ciphers, RC4 or 3DES: the lists are explicit, so OpenSSL offers
//! exactly these and nothing it would add by default.
//!
//! PSK suites come first: a TLS 1.2 client offers PSK suites only when it holds a PSK, and a
//! client that does wants the PSK framework.

/// One TLS 1.2 suite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Suite {
    /// OpenSSL's name, as in `openssl ciphers`.
    pub(crate) openssl: &'static str,
    /// The IANA name (RFC), which [`Established::cipher`](crate::association::Established) reports.
    pub(crate) iana: &'static str,
    /// Mandatory in TS-0003 clause 10.2.
    pub(crate) mandatory: bool,
}

const fn suite(openssl: &'static str, iana: &'static str, mandatory: bool) -> Suite {
    Suite {
        openssl,
        iana,
        mandatory,
    }
}

/// TLS 1.2 suites of the PSK framework (RFC 4279 key exchanges), most preferred first.
pub(crate) const PSK_TLS12: &[Suite] = &[
    // Forward secret (ECDHE) and AEAD; RFC 7905.
    suite(
        "ECDHE-PSK-CHACHA20-POLY1305",
        "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256",
        false,
    ),
    // Forward secret (finite-field DHE, RFC 7919 ffdhe2048 parameters) and AEAD; RFC 4279 + 5487.
    suite(
        "DHE-PSK-AES128-GCM-SHA256",
        "TLS_DHE_PSK_WITH_AES_128_GCM_SHA256",
        false,
    ),
    // AEAD, no forward secrecy; RFC 5487.
    suite(
        "PSK-AES128-GCM-SHA256",
        "TLS_PSK_WITH_AES_128_GCM_SHA256",
        false,
    ),
    // AEAD, no forward secrecy; RFC 5487.
    suite(
        "PSK-AES256-GCM-SHA384",
        "TLS_PSK_WITH_AES_256_GCM_SHA384",
        false,
    ),
    // AEAD (CCM, 16-byte tag), for constrained clients without GCM; RFC 6655.
    suite("PSK-AES128-CCM", "TLS_PSK_WITH_AES_128_CCM", false),
    // Forward secret (ECDHE), CBC + HMAC; RFC 5489.
    suite(
        "ECDHE-PSK-AES128-CBC-SHA256",
        "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256",
        false,
    ),
    // NOTE(ccm8): TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655; the DTLS suite of TS-0003 10.2.2, not
    // mandatory over TLS) is not offered: its 8-byte tag is below OpenSSL's security level 1
    // since OpenSSL 3.2 (the OpenSSL built into the CSE, docs/building.md), and lowering the
    // level to 0 would also admit weak peer keys and SHA-1 signatures.
    // Mandatory for every PSK-based framework, TS-0003 clause 10.2.2; RFC 5487.
    suite(
        "PSK-AES128-CBC-SHA256",
        "TLS_PSK_WITH_AES_128_CBC_SHA256",
        true,
    ),
];

/// TLS 1.2 suites of the certificate framework (ECDHE_ECDSA, RFC 8422), most preferred first.
pub(crate) const CERTIFICATE_TLS12: &[Suite] = &[
    // AEAD; RFC 5289.
    suite(
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        false,
    ),
    // AEAD; RFC 5289.
    suite(
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        false,
    ),
    // AEAD; RFC 7905.
    suite(
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        false,
    ),
    // Mandatory for the certificate-based frameworks, TS-0003 clause 10.2.3; RFC 5289.
    suite(
        "ECDHE-ECDSA-AES128-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        true,
    ),
];

/// TLS 1.3 suites (RFC 8446), most preferred first. TS-0003 Release 3 names no TLS 1.3 suite.
///
/// NOTE(tls13-psk): an external PSK reaches OpenSSL through the legacy PSK callback (the
/// rust `openssl` crate does not expose `SSL_CTX_set_psk_find_session_callback`), which
/// binds every PSK to SHA-256. A TLS 1.3 PSK handshake therefore needs a SHA-256 suite
/// (`TLS_AES_128_GCM_SHA256` or `TLS_CHACHA20_POLY1305_SHA256`); a client that offers only
/// `TLS_AES_256_GCM_SHA384` cannot use its PSK. `TLS_AES_128_GCM_SHA256` comes first so the
/// server picks a SHA-256 suite whenever the client offers one.
pub(crate) const TLS13: &str =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// The TLS 1.2 suites for the enabled frameworks.
pub(crate) fn tls12(certificate: bool, psk: bool) -> impl Iterator<Item = &'static Suite> {
    let psk_suites = if psk { PSK_TLS12 } else { &[] };
    let cert_suites = if certificate { CERTIFICATE_TLS12 } else { &[] };
    psk_suites.iter().chain(cert_suites)
}

/// The OpenSSL cipher string for the enabled frameworks, limited to `only` when given.
pub(crate) fn tls12_cipher_list(certificate: bool, psk: bool, only: Option<&[String]>) -> String {
    tls12(certificate, psk)
        .filter(|s| only.is_none_or(|o| o.iter().any(|n| n == s.iana)))
        .map(|s| s.openssl)
        .collect::<Vec<_>>()
        .join(":")
}

/// The TLS 1.3 suites, limited to `only` when given.
pub(crate) fn tls13_suites(only: Option<&[String]>) -> String {
    TLS13
        .split(':')
        .filter(|s| only.is_none_or(|o| o.iter().any(|n| n == s)))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks a policy's suite restriction: every name is a built-in suite of an enabled
/// framework (or TLS 1.3), and no mandatory suite of an enabled framework is left out.
pub(crate) fn check_restriction(
    certificate: bool,
    psk: bool,
    only: &[String],
) -> Result<(), String> {
    for name in only {
        let known =
            tls12(certificate, psk).any(|s| s.iana == name) || TLS13.split(':').any(|s| s == name);
        if !known {
            return Err(format!("'{name}' is not a suite this listener can offer"));
        }
    }
    if let Some(m) =
        tls12(certificate, psk).find(|s| s.mandatory && !only.iter().any(|n| n == s.iana))
    {
        return Err(format!(
            "{} is mandatory (TS-0003 clause 10.2) and cannot be removed",
            m.iana
        ));
    }
    Ok(())
}

/// Whether any enabled TLS 1.2 suite needs finite-field DH parameters.
pub(crate) fn needs_dh(certificate: bool, psk: bool) -> bool {
    tls12(certificate, psk).any(|s| s.openssl.starts_with("DHE-"))
}

/// Fails when this OpenSSL lacks a suite TS-0003 clause 10.2 makes mandatory for an enabled
/// framework (OpenSSL silently drops unknown names from a cipher list).
pub(crate) fn check_mandatory(certificate: bool, psk: bool) -> Result<(), &'static str> {
    for s in tls12(certificate, psk).filter(|s| s.mandatory) {
        let known = openssl::ssl::SslContextBuilder::new(openssl::ssl::SslMethod::tls_server())
            .and_then(|mut b| b.set_cipher_list(s.openssl))
            .is_ok();
        if !known {
            return Err(s.iana);
        }
    }
    Ok(())
}

/// Whether an OpenSSL suite name is a PSK suite.
pub(crate) fn is_psk(openssl_name: &str) -> bool {
    openssl_name.contains("PSK")
}

/// RFC 7919 ffdhe2048 group, for `DHE-PSK-*` (public parameters, not a secret).
pub(crate) const FFDHE2048_PEM: &[u8] = b"-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hold_the_mandatory_suites_and_nothing_weak() {
        assert!(PSK_TLS12
            .iter()
            .any(|s| s.mandatory && s.iana == "TLS_PSK_WITH_AES_128_CBC_SHA256"));
        assert!(CERTIFICATE_TLS12
            .iter()
            .any(|s| s.mandatory && s.iana == "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"));
        for s in PSK_TLS12.iter().chain(CERTIFICATE_TLS12) {
            for weak in ["RSA", "NULL", "EXP", "RC4", "DES", "MD5", "anon"] {
                assert!(
                    !s.openssl.contains(weak) && !s.iana.contains(weak),
                    "{}",
                    s.openssl
                );
            }
        }
        assert!(PSK_TLS12.iter().all(|s| is_psk(s.openssl)));
        assert!(CERTIFICATE_TLS12.iter().all(|s| !is_psk(s.openssl)));
        assert_eq!(
            tls12_cipher_list(false, true, None).split(':').count(),
            PSK_TLS12.len()
        );
        assert!(needs_dh(false, true) && !needs_dh(true, false));
        assert!(TLS13.starts_with("TLS_AES_128_GCM_SHA256"));
    }

    #[test]
    fn restrictions_keep_the_mandatory_suites() {
        let only: Vec<String> = [
            "TLS_PSK_WITH_AES_128_CBC_SHA256",
            "TLS_PSK_WITH_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",
        ]
        .map(String::from)
        .to_vec();
        assert!(check_restriction(false, true, &only).is_ok());
        assert_eq!(
            tls12_cipher_list(false, true, Some(&only)),
            "PSK-AES128-GCM-SHA256:PSK-AES128-CBC-SHA256"
        );
        assert_eq!(tls13_suites(Some(&only)), "TLS_AES_128_GCM_SHA256");
        assert!(check_restriction(false, true, &only[1..]).is_err_and(|e| e.contains("mandatory")));
        assert!(
            check_restriction(true, true, &only).is_err(),
            "the certificate framework's mandatory suite is missing"
        );
        assert!(check_restriction(false, true, &["TLS_RSA_WITH_RC4_128_MD5".into()]).is_err());
    }

    #[test]
    fn openssl_knows_every_suite() {
        for s in PSK_TLS12.iter().chain(CERTIFICATE_TLS12) {
            let mut b = openssl::ssl::SslContextBuilder::new(openssl::ssl::SslMethod::tls_server())
                .expect("ctx");
            assert!(
                b.set_cipher_list(s.openssl).is_ok(),
                "OpenSSL does not know {}",
                s.openssl
            );
        }
    }
}
