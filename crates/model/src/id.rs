//! Addressing: the three forms a request's `To` can take (TS-0001 clause 7.2) and the
//! identifiers the CSE generates.

use crate::error::{Error, Result};
use rand::Rng;

/// Where a `To` points, before it is resolved against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// CSE-relative: `cse-in/ae1/cnt` (structured) or `cnt123` (unstructured).
    CseRelative(String),
    /// SP-relative: `/id-in/cse-in/ae1`.
    SpRelative {
        /// The CSE-ID without its leading slash.
        cse_id: String,
        /// What follows the CSE-ID, CSE-relative.
        rest: String,
    },
    /// Absolute: `//sp.example/id-in/cse-in/ae1`.
    Absolute {
        /// The M2M Service Provider ID.
        sp_id: String,
        /// The CSE-ID without slashes.
        cse_id: String,
        /// What follows the CSE-ID, CSE-relative.
        rest: String,
    },
}

impl Address {
    /// Parses a primitive `To` value. Empty segments (`a//b`) are refused.
    pub fn parse(to: &str) -> Result<Self> {
        let bad = || Error::bad_request(format!("invalid target address '{to}'"));
        if to.is_empty() || to.len() > 2048 {
            return Err(bad());
        }
        let addr = if let Some(abs) = to.strip_prefix("//") {
            let mut parts = abs.splitn(3, '/');
            let sp_id = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
            let cse_id = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
            Self::Absolute {
                sp_id: sp_id.to_owned(),
                cse_id: cse_id.to_owned(),
                rest: parts.next().unwrap_or("").to_owned(),
            }
        } else if let Some(sp) = to.strip_prefix('/') {
            let mut parts = sp.splitn(2, '/');
            let cse_id = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
            Self::SpRelative {
                cse_id: cse_id.to_owned(),
                rest: parts.next().unwrap_or("").to_owned(),
            }
        } else {
            Self::CseRelative(to.to_owned())
        };
        let rest = match &addr {
            Self::CseRelative(r) => r,
            Self::SpRelative { rest, .. } | Self::Absolute { rest, .. } => rest,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if !rest.is_empty() && rest.split('/').any(str::is_empty) {
            return Err(bad());
        }
        Ok(addr)
    }
}

/// A valid resource name (`m2m:resourceName`, TS-0004 Table 6.3.3-1 and the `resource-name`
/// production of clause 6.2.4): a letter or digit, then letters, digits, `-`, `.` and `_`,
/// at most 255 characters, and not a virtual resource's name (`la`, `ol`, `fopt`). Names
/// outside this set could not be written in a structured address without escaping, so two
/// clients could disagree about which resource an address names.
pub fn validate_resource_name(rn: &str) -> Result<()> {
    let mut chars = rn.chars();
    let ok = rn.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && !matches!(rn, "la" | "ol" | "fopt");
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "invalid resource name '{rn}': a letter or digit, then letters, digits, '-', '.' \
             or '_' (TS-0004 m2m:resourceName), and not la, ol or fopt"
        )))
    }
}

/// `*` matches any run of characters except `/`; everything else literally. Runs in
/// linear time per segment, so a hostile pattern cannot make matching slow.
pub fn glob(pattern: &str, s: &str) -> bool {
    let mut p = pattern.split('/');
    let mut t = s.split('/');
    loop {
        match (p.next(), t.next()) {
            (None, None) => return true,
            (Some(ps), Some(ts)) if segment_glob(ps.as_bytes(), ts.as_bytes()) => {}
            _ => return false,
        }
    }
}

fn segment_glob(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|b| *b == b'*')
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A random identifier of `len` lowercase alphanumerics. Random, not sequential, so that an
/// identifier says nothing about when or by whom it was made.
pub fn random_token(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A fresh resource identifier for a type: the short name, the creation time in
/// milliseconds (base 36, so identifiers sort by creation and the store's indexes grow at
/// their end instead of at random pages), then random characters. The time is no secret:
/// every resource carries it in `ct` anyway.
pub fn new_resource_id(short_name: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{short_name}{}{}", base36(millis, 9), random_token(8))
}

fn base36(mut n: u128, width: usize) -> String {
    let mut digits = vec![b'0'; width];
    for d in digits.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// A fresh CSE-assigned AE-ID stem: `C` followed by random characters (a pseudonym).
pub fn new_ae_id() -> String {
    format!("C{}", random_token(20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            Address::parse("cse-in/ae").ok(),
            Some(Address::CseRelative("cse-in/ae".into()))
        );
        assert_eq!(
            Address::parse("/id-in/cse-in").ok(),
            Some(Address::SpRelative {
                cse_id: "id-in".into(),
                rest: "cse-in".into()
            })
        );
        assert_eq!(
            Address::parse("//sp/id-in").ok(),
            Some(Address::Absolute {
                sp_id: "sp".into(),
                cse_id: "id-in".into(),
                rest: String::new()
            })
        );
        assert!(Address::parse("").is_err());
        assert!(Address::parse("cse-in//x").is_err());
        assert!(Address::parse("//").is_err());
    }

    #[test]
    fn wildcards_stay_within_a_segment() {
        assert!(glob("C*", "Cabc"));
        assert!(glob("C*x", "Cabx"));
        assert!(!glob("C*", "Cab/c"));
        assert!(!glob("C*", "Sabc"));
        assert!(glob("*", "anything"));
        assert!(!glob("Cab", "Cabc"));
        assert!(glob("/id-in/C*", "/id-in/Cx"));
        assert!(glob("*a*b", "xxaxxb") && !glob("*a*b", "xxaxxc"));
        assert!(glob("Cé*", "Céx"));
        let hostile = "*a".repeat(100);
        assert!(!glob(&hostile, &"a".repeat(99)));
    }

    #[test]
    fn resource_ids_sort_by_creation() {
        assert_eq!(base36(35, 3), "00z");
        assert_eq!(base36(36, 3), "010");
        let a = new_resource_id("cin");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_resource_id("cin");
        assert!(a < b && a.len() == 20 && a.starts_with("cin"), "{a} {b}");
    }

    #[test]
    fn ids_are_random_and_prefixed() {
        let a = new_ae_id();
        assert!(a.starts_with('C') && a.len() == 21);
        assert_ne!(a, new_ae_id());
        assert!(validate_resource_name("la").is_err());
        assert!(validate_resource_name("a b").is_err());
        assert!(validate_resource_name("sensor-1").is_ok());
    }

    /// TS-0004 Table 6.3.3-1 (`m2m:resourceName`) and the clause 6.2.4 ABNF.
    #[test]
    fn resource_names_are_unreserved_characters() {
        for good in ["a", "7", "myLightBulb", "123Sensor", "a-b.c_d", "x.."] {
            assert!(validate_resource_name(good).is_ok(), "{good}");
        }
        for bad in [
            "", "test?", "a#b", "a/b", "a%20b", "a~b", "-a", ".a", "_a", ".", "..", "-", "é",
            "a b", "a\tb", "fopt", "ol",
        ] {
            assert!(validate_resource_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_resource_name(&"a".repeat(255)).is_ok());
        assert!(validate_resource_name(&"a".repeat(256)).is_err());
    }
}
