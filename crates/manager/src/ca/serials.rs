//! Certificate serial numbers: random, positive, 16 bytes (126 random bits), so that serials
//! are unique without coordination and reveal nothing about how many certificates the CA
//! issued or when (CA/Browser Forum practice asks for at least 64 random bits).

use super::error::CaError;
use std::fmt;
use std::str::FromStr;

/// A certificate's serial number, shown as uppercase hex (as `openssl x509 -serial` does).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// A fresh random serial: 16 bytes from the operating system's generator, the first one
    /// in `0x40..=0x7f` so the DER INTEGER is positive and always 16 bytes long.
    pub(super) fn random() -> Result<Self, CaError> {
        let mut bytes = vec![0u8; 16];
        openssl::rand::rand_bytes(&mut bytes)
            .map_err(|e| CaError::Encoding(format!("random serial number: {e}")))?;
        bytes[0] = (bytes[0] & 0x3f) | 0x40;
        Ok(Self(bytes))
    }

    /// The serial's big-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The serial from big-endian bytes (leading zero bytes dropped).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CaError> {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let trimmed = &bytes[first..];
        if trimmed.is_empty() || trimmed.len() > 20 {
            return Err(CaError::InvalidSerial {
                serial: hex::encode(bytes),
            });
        }
        Ok(Self(trimmed.to_vec()))
    }
}

impl FromStr for Serial {
    type Err = CaError;

    /// Hex, any case, with or without `:` separators (`4A:0B:...` or `4a0b...`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s.chars().filter(|c| *c != ':').collect();
        let digits = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = hex::decode(&digits).map_err(|_| CaError::InvalidSerial {
            serial: s.to_owned(),
        })?;
        Self::from_bytes(&bytes).map_err(|_| CaError::InvalidSerial {
            serial: s.to_owned(),
        })
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_upper(&self.0))
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_16_bytes_and_differ() {
        let a = Serial::random().expect("random");
        let b = Serial::random().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 16);
        assert!((0x40..=0x7f).contains(&a.as_bytes()[0]));
    }

    #[test]
    fn serials_parse_in_the_forms_tools_print() {
        let s: Serial = "4A:0b:FF".parse().expect("hex");
        assert_eq!(s.as_bytes(), &[0x4a, 0x0b, 0xff]);
        assert_eq!(s.to_string(), "4A0BFF");
        assert_eq!("004a0bff".parse::<Serial>().ok(), Some(s));
        assert_eq!(
            "abc".parse::<Serial>().expect("odd").as_bytes(),
            &[0x0a, 0xbc]
        );
        for bad in ["", "00", "xyz", &"11".repeat(21)] {
            assert!(bad.parse::<Serial>().is_err(), "{bad}");
        }
    }
}
