//! `m2m:locationRegion` (TS-0004 clause 6.3.5.28): the location condition of an ACP context
//! (`aclr`), either a circle (`accr`: latitude, longitude, radius in metres) or a list of
//! ISO 3166-1 alpha-2 country codes (`accc`), never both.

use std::fmt;

/// Mean Earth radius (IUGG), metres: the distance error of the spherical model is far below
/// anything a location condition can mean.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Where an originator is, as far as the CSE knows it: a position, a country, or both (a
/// country alone is common, from the network or the operator's records).
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// (degrees north, -90 to 90; degrees east, -180 to 180), when known.
    pub position: Option<(f64, f64)>,
    /// ISO 3166-1 alpha-2 country code, upper case, when known.
    pub country: Option<String>,
}

/// A location region of an ACP context.
#[derive(Debug, Clone, PartialEq)]
pub enum Region {
    /// Within `radius_m` metres (great-circle distance) of a point.
    Circle {
        /// Centre latitude, degrees.
        lat: f64,
        /// Centre longitude, degrees.
        lon: f64,
        /// Radius, metres.
        radius_m: f64,
    },
    /// In one of these countries (upper-case alpha-2 codes).
    Countries(Vec<String>),
}

impl Region {
    /// A circle from `[lat, lon, radius]`; each value must be a finite number in range.
    pub fn circle(values: &[f64]) -> Result<Self, String> {
        let [lat, lon, radius_m] = values else {
            return Err("accr must be [latitude, longitude, radius in metres]".to_owned());
        };
        let (lat, lon, radius_m) = (*lat, *lon, *radius_m);
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(format!("latitude {lat} is not within -90 to 90"));
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(format!("longitude {lon} is not within -180 to 180"));
        }
        if !(radius_m.is_finite() && radius_m >= 0.0) {
            return Err(format!("radius {radius_m} is not a distance in metres"));
        }
        Ok(Self::Circle { lat, lon, radius_m })
    }

    /// A country list; each code is two ASCII letters (kept upper case).
    pub fn countries<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let codes: Vec<String> = codes
            .into_iter()
            .map(|c| {
                if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                    Ok(c.to_ascii_uppercase())
                } else {
                    Err(format!("'{c}' is not an ISO 3166-1 alpha-2 country code"))
                }
            })
            .collect::<Result<_, _>>()?;
        if codes.is_empty() {
            return Err("accc needs at least one country code".to_owned());
        }
        Ok(Self::Countries(codes))
    }

    /// Whether a known location lies in the region. A circle needs the location's position
    /// and a country list its country; coordinates alone do not say which country they are
    /// in, nor a country where in it.
    pub fn contains(&self, loc: &Location) -> bool {
        match self {
            Self::Circle { lat, lon, radius_m } => loc.position.is_some_and(|(at_lat, at_lon)| {
                distance_m(*lat, *lon, at_lat, at_lon) <= *radius_m
            }),
            Self::Countries(codes) => loc
                .country
                .as_deref()
                .is_some_and(|c| codes.iter().any(|code| code.eq_ignore_ascii_case(c))),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Circle { lat, lon, radius_m } => {
                write!(f, "within {radius_m} m of ({lat}, {lon})")
            }
            Self::Countries(codes) => write!(f, "in {}", codes.join(",")),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.position, &self.country) {
            (Some((lat, lon)), Some(c)) => write!(f, "({lat}, {lon}) {c}"),
            (Some((lat, lon)), None) => write!(f, "({lat}, {lon})"),
            (None, Some(c)) => write!(f, "{c}"),
            (None, None) => write!(f, "unknown"),
        }
    }
}

/// Great-circle distance (haversine), metres.
fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(lat: f64, lon: f64, country: Option<&str>) -> Location {
        Location {
            position: Some((lat, lon)),
            country: country.map(str::to_owned),
        }
    }

    #[test]
    fn a_country_alone_is_enough_for_a_country_list_and_not_for_a_circle() {
        let korea = Location {
            position: None,
            country: Some("KR".into()),
        };
        assert!(Region::countries(["KR"]).expect("valid").contains(&korea));
        assert!(!Region::countries(["FR"]).expect("valid").contains(&korea));
        let circle = Region::circle(&[37.5, 127.0, 1_000_000.0]).expect("valid");
        assert!(
            !circle.contains(&korea),
            "no position: not inside any circle"
        );
        assert_eq!(korea.to_string(), "KR");
    }

    #[test]
    fn circles_measure_great_circle_distance() {
        // Paris (48.8566, 2.3522) to London (51.5074, -0.1278) is about 344 km.
        let paris = Region::circle(&[48.8566, 2.3522, 350_000.0]).expect("valid");
        assert!(paris.contains(&at(51.5074, -0.1278, None)));
        let small = Region::circle(&[48.8566, 2.3522, 300_000.0]).expect("valid");
        assert!(!small.contains(&at(51.5074, -0.1278, None)));
        let point = Region::circle(&[10.0, 20.0, 0.0]).expect("valid");
        assert!(point.contains(&at(10.0, 20.0, None)));
        assert!(!point.contains(&at(10.0001, 20.0, None)));
        // Across the antimeridian: 179.9 E and 179.9 W are about 22 km apart at the equator.
        let dateline = Region::circle(&[0.0, 179.9, 25_000.0]).expect("valid");
        assert!(dateline.contains(&at(0.0, -179.9, None)));
    }

    #[test]
    fn countries_need_a_known_country() {
        let r = Region::countries(["kr", "FR"]).expect("valid");
        assert!(r.contains(&at(0.0, 0.0, Some("KR"))));
        assert!(r.contains(&at(0.0, 0.0, Some("fr"))));
        assert!(!r.contains(&at(0.0, 0.0, Some("DE"))));
        assert!(!r.contains(&at(0.0, 0.0, None)));
    }

    #[test]
    fn malformed_regions_are_refused() {
        assert!(Region::circle(&[1.0, 2.0]).is_err());
        assert!(Region::circle(&[1.0, 2.0, 3.0, 4.0]).is_err());
        assert!(Region::circle(&[91.0, 0.0, 1.0]).is_err());
        assert!(Region::circle(&[0.0, -181.0, 1.0]).is_err());
        assert!(Region::circle(&[0.0, 0.0, -1.0]).is_err());
        assert!(Region::circle(&[f64::NAN, 0.0, 1.0]).is_err());
        assert!(Region::circle(&[0.0, 0.0, f64::INFINITY]).is_err());
        assert!(Region::countries([]).is_err());
        assert!(Region::countries(["KOR"]).is_err());
        assert!(Region::countries(["K1"]).is_err());
        assert!(Region::countries(["é"]).is_err());
    }
}
