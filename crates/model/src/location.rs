//! Geo-location: the `loc` attribute (`m2m:geoCoordinates`: `typ` a geometry type, `crd`
//! GeoJSON coordinates) and the geo-query of discovery (`gmty`, `geom`, `gsf`). Parsed
//! strictly so that a stored location is always one the geo-query can evaluate; the
//! predicates themselves are the `geo` crate's (DE-9IM relate), not home-made.

use crate::error::{Error, Result};
use geo::line_intersection::{line_intersection, LineIntersection};
use geo::{Area, Line, Relate};
use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use serde_json::Value;

/// The most positions one geometry may hold: bounds the cost of a geo-query (relate is
/// super-linear in the number of segments) and of storing a location.
pub const MAX_POSITIONS: usize = 1000;

/// `m2m:geometryType`: the GeoJSON geometry kinds (1 Point ... 6 MultiPolygon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryType {
    /// 1: one position.
    Point,
    /// 2: two or more positions.
    LineString,
    /// 3: a list of closed rings (the first the exterior).
    Polygon,
    /// 4: a list of positions.
    MultiPoint,
    /// 5: a list of line strings.
    MultiLineString,
    /// 6: a list of polygons.
    MultiPolygon,
}

impl GeometryType {
    /// From the enumeration code; anything else is 4000.
    pub fn from_code(code: u64) -> Result<Self> {
        Ok(match code {
            1 => Self::Point,
            2 => Self::LineString,
            3 => Self::Polygon,
            4 => Self::MultiPoint,
            5 => Self::MultiLineString,
            6 => Self::MultiPolygon,
            _ => {
                return Err(Error::bad_request(format!(
                    "geometry type {code} is not 1 to 6"
                )))
            }
        })
    }
}

/// `m2m:geoSpatialFunctionType` (`gsf`): how the resource's location must relate to the
/// query geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpatialFunction {
    /// 1: the location lies within the query geometry.
    Within,
    /// 2: the location contains the query geometry.
    Contains,
    /// 3: the location and the query geometry share at least one point.
    Intersects,
}

impl SpatialFunction {
    /// From the enumeration code; anything else is 4000.
    pub fn from_code(code: u64) -> Result<Self> {
        Ok(match code {
            1 => Self::Within,
            2 => Self::Contains,
            3 => Self::Intersects,
            _ => return Err(Error::bad_request("gsf must be 1, 2 or 3")),
        })
    }
}

/// A validated geometry in GeoJSON order (longitude, latitude; an altitude is accepted and
/// not used by the predicates).
#[derive(Debug, Clone, PartialEq)]
pub struct Geo(Geometry<f64>);

impl Geo {
    /// Parses a geometry of a type from its coordinates, given either as a JSON array or as
    /// a string holding one (`crd` is a string in the XSD; JSON clients send both).
    pub fn parse(typ: GeometryType, crd: &Value) -> Result<Self> {
        let parsed;
        let crd = match crd {
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s)
                    .map_err(|_| Error::bad_request("coordinates are not a JSON array"))?;
                &parsed
            }
            other => other,
        };
        let mut budget = MAX_POSITIONS;
        let g = match typ {
            GeometryType::Point => Geometry::Point(Point(position(crd, &mut budget)?)),
            GeometryType::LineString => Geometry::LineString(line(crd, &mut budget)?),
            GeometryType::Polygon => Geometry::Polygon(polygon(crd, &mut budget)?),
            GeometryType::MultiPoint => Geometry::MultiPoint(MultiPoint(
                list(crd, 1)?
                    .iter()
                    .map(|p| position(p, &mut budget).map(Point))
                    .collect::<Result<_>>()?,
            )),
            GeometryType::MultiLineString => Geometry::MultiLineString(MultiLineString(
                list(crd, 1)?
                    .iter()
                    .map(|l| line(l, &mut budget))
                    .collect::<Result<_>>()?,
            )),
            GeometryType::MultiPolygon => Geometry::MultiPolygon(MultiPolygon(
                list(crd, 1)?
                    .iter()
                    .map(|p| polygon(p, &mut budget))
                    .collect::<Result<_>>()?,
            )),
        };
        Ok(Self(g))
    }

    /// Reads an `m2m:geoCoordinates` value (`{"typ": 1, "crd": ...}`), as the `loc`
    /// attribute holds it.
    pub fn from_geo_coordinates(v: &Value) -> Result<Self> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::bad_request("loc must be an m2m:geoCoordinates object"))?;
        if let Some(other) = obj.keys().find(|k| !matches!(k.as_str(), "typ" | "crd")) {
            return Err(Error::bad_request(format!(
                "unknown member '{other}' in loc"
            )));
        }
        let typ = obj
            .get("typ")
            .and_then(Value::as_u64)
            .ok_or_else(|| Error::bad_request("loc needs typ, an integer"))
            .and_then(GeometryType::from_code)?;
        let crd = obj
            .get("crd")
            .ok_or_else(|| Error::bad_request("loc needs crd"))?;
        Self::parse(typ, crd)
    }

    /// Whether `self` (a resource's location) relates to `query` as `f` asks.
    /// The relate algorithm has internal invariants (`expect`s); should one ever fail on a
    /// crafted geometry, the resource does not match rather than the request panicking.
    pub fn satisfies(&self, f: SpatialFunction, query: &Geo) -> bool {
        let relate = || self.0.relate(&query.0);
        let Ok(m) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(relate)) else {
            return false;
        };
        match f {
            SpatialFunction::Within => m.is_within(),
            SpatialFunction::Contains => m.is_contains(),
            SpatialFunction::Intersects => m.is_intersects(),
        }
    }
}

/// A list of at least `min` items.
fn list(v: &Value, min: usize) -> Result<&Vec<Value>> {
    match v.as_array() {
        Some(a) if a.len() >= min => Ok(a),
        Some(_) => Err(Error::bad_request(format!(
            "coordinates: a list needs at least {min} items"
        ))),
        None => Err(Error::bad_request("coordinates: a list was expected")),
    }
}

/// One position: `[longitude, latitude]` or `[longitude, latitude, altitude]`, in range.
fn position(v: &Value, budget: &mut usize) -> Result<Coord<f64>> {
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| Error::bad_request(format!("more than {MAX_POSITIONS} positions")))?;
    let a = v
        .as_array()
        .filter(|a| a.len() == 2 || a.len() == 3)
        .ok_or_else(|| Error::bad_request("a position is [longitude, latitude(, altitude)]"))?;
    let nums: Vec<f64> = a
        .iter()
        .map(|n| n.as_f64().filter(|f| f.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| Error::bad_request("a position holds numbers only"))?;
    let (x, y) = (nums[0], nums[1]);
    if !(-180.0..=180.0).contains(&x) {
        return Err(Error::bad_request(format!(
            "longitude {x} is outside -180..180"
        )));
    }
    if !(-90.0..=90.0).contains(&y) {
        return Err(Error::bad_request(format!(
            "latitude {y} is outside -90..90"
        )));
    }
    Ok(Coord { x, y })
}

fn line(v: &Value, budget: &mut usize) -> Result<LineString<f64>> {
    let pts = list(v, 2)?
        .iter()
        .map(|p| position(p, budget))
        .collect::<Result<Vec<_>>>()?;
    if pts.windows(2).all(|w| w[0] == w[1]) {
        return Err(Error::bad_request(
            "a line string needs two distinct positions",
        ));
    }
    Ok(LineString(pts))
}

/// A polygon: closed rings of at least four positions, the first the exterior, valid as
/// OGC defines it (no self-intersection), so the predicates are well defined.
fn polygon(v: &Value, budget: &mut usize) -> Result<Polygon<f64>> {
    let mut rings = list(v, 1)?
        .iter()
        .map(|r| {
            let pts = list(r, 4)?
                .iter()
                .map(|p| position(p, budget))
                .collect::<Result<Vec<_>>>()?;
            if pts.first() != pts.last() {
                return Err(Error::bad_request(
                    "a polygon ring must end where it starts",
                ));
            }
            Ok(LineString(pts))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let exterior = rings.next().unwrap_or_else(|| LineString(Vec::new()));
    let interiors: Vec<LineString<f64>> = rings.collect();
    if !std::iter::once(&exterior)
        .chain(&interiors)
        .all(simple_ring)
    {
        return Err(Error::bad_request(
            "a polygon ring crosses itself or encloses no area",
        ));
    }
    Ok(Polygon::new(exterior, interiors))
}

/// A ring that encloses some area and whose segments meet only where consecutive ones
/// share an end (the closing point joins the last segment to the first).
fn simple_ring(ring: &LineString<f64>) -> bool {
    if Polygon::new(ring.clone(), Vec::new()).unsigned_area() <= 0.0 {
        return false;
    }
    let segs: Vec<Line<f64>> = ring.lines().collect();
    let n = segs.len();
    (0..n).all(|i| {
        (i + 1..n).all(|j| {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            match line_intersection(segs[i], segs[j]) {
                None => true,
                Some(LineIntersection::SinglePoint { .. }) => adjacent,
                Some(LineIntersection::Collinear { .. }) => false,
            }
        })
    })
}

/// The geo-query of a filter: all three of `gmty`, `geom` and `gsf`, or none.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoQuery {
    /// The query geometry.
    pub geometry: Geo,
    /// How a resource's location must relate to it.
    pub function: SpatialFunction,
}

impl GeoQuery {
    /// Builds the query from the three criteria as received (`geom` in its text form);
    /// one or two of them without the others is 4000.
    pub fn from_parts(
        gmty: Option<u64>,
        geom: Option<&str>,
        gsf: Option<u64>,
    ) -> Result<Option<Self>> {
        match (gmty, geom, gsf) {
            (None, None, None) => Ok(None),
            (Some(t), Some(g), Some(f)) => Ok(Some(Self {
                geometry: Geo::parse(GeometryType::from_code(t)?, &Value::String(g.into()))?,
                function: SpatialFunction::from_code(f)?,
            })),
            _ => Err(Error::bad_request(
                "a geo-query needs all of gmty, geom and gsf",
            )),
        }
    }

    /// Whether a resource's `loc` value meets the query; a resource without a (readable)
    /// location never does.
    pub fn matches(&self, loc: Option<&Value>) -> bool {
        loc.and_then(|v| Geo::from_geo_coordinates(v).ok())
            .is_some_and(|g| g.satisfies(self.function, &self.geometry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(t: u64, g: &str, f: u64) -> GeoQuery {
        match GeoQuery::from_parts(Some(t), Some(g), Some(f)) {
            Ok(Some(q)) => q,
            other => panic!("{g}: {other:?}"),
        }
    }

    fn geo(v: Value) -> Result<Geo> {
        Geo::from_geo_coordinates(&v)
    }

    #[test]
    fn valid_locations_are_read_in_both_forms() {
        for v in [
            json!({"typ": 1, "crd": [1.5, 2.5]}),
            json!({"typ": 1, "crd": "[1.5, 2.5, 100]"}),
            json!({"typ": 2, "crd": [[0, 0], [1, 1]]}),
            json!({"typ": 3, "crd": "[[[0,0],[4,0],[4,4],[0,4],[0,0]]]"}),
            json!({"typ": 3, "crd": [[[0,0],[4,0],[4,4],[0,4],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}),
            json!({"typ": 4, "crd": [[0, 0], [1, 1]]}),
            json!({"typ": 5, "crd": [[[0, 0], [1, 1]], [[2, 2], [3, 3]]]}),
            json!({"typ": 6, "crd": [[[[0,0],[1,0],[1,1],[0,0]]]]}),
        ] {
            assert!(geo(v.clone()).is_ok(), "{v}");
        }
    }

    #[test]
    fn bad_locations_are_refused() {
        let too_many: Vec<Value> = (0..=MAX_POSITIONS)
            .map(|i| json!([0, i as f64 / 20.0]))
            .collect();
        for v in [
            json!({"typ": 1}),
            json!({"crd": [1, 2]}),
            json!({"typ": 0, "crd": [1, 2]}),
            json!({"typ": 7, "crd": [1, 2]}),
            json!({"typ": "1", "crd": [1, 2]}),
            json!({"typ": 1, "crd": [1, 2], "x": 1}),
            json!({"typ": 1, "crd": [181, 0]}),
            json!({"typ": 1, "crd": [0, -90.5]}),
            json!({"typ": 1, "crd": [1]}),
            json!({"typ": 1, "crd": [1, 2, 3, 4]}),
            json!({"typ": 1, "crd": ["1", 2]}),
            json!({"typ": 1, "crd": "not json"}),
            json!({"typ": 1, "crd": "[1,"}),
            json!({"typ": 1, "crd": [[1, 2]]}),
            json!({"typ": 2, "crd": [[0, 0]]}),
            json!({"typ": 2, "crd": [[0, 0], [0, 0]]}),
            json!({"typ": 3, "crd": [[[0,0],[1,0],[1,1]]]}),
            json!({"typ": 3, "crd": [[[0,0],[1,0],[1,1],[0,1]]]}),
            json!({"typ": 3, "crd": [[[0,0],[2,2],[2,0],[0,2],[0,0]]]}),
            json!({"typ": 3, "crd": []}),
            json!({"typ": 4, "crd": []}),
            json!({"typ": 2, "crd": too_many}),
            json!([1, 2]),
        ] {
            assert!(geo(v.clone()).is_err(), "{v}");
        }
    }

    #[test]
    fn predicates_follow_the_spatial_function() {
        let square = query(3, "[[[0,0],[10,0],[10,10],[0,10],[0,0]]]", 1);
        assert!(square.matches(Some(&json!({"typ": 1, "crd": [5, 5]}))));
        assert!(!square.matches(Some(&json!({"typ": 1, "crd": [15, 5]}))));
        assert!(!square.matches(None));
        assert!(!square.matches(Some(&json!("junk"))));
        let point_in = query(1, "[5,5]", 2);
        assert!(point_in.matches(Some(
            &json!({"typ": 3, "crd": "[[[0,0],[10,0],[10,10],[0,10],[0,0]]]"})
        )));
        assert!(!point_in.matches(Some(&json!({"typ": 1, "crd": [6, 6]}))));
        let crossing = query(2, "[[-5,5],[5,5]]", 3);
        assert!(crossing.matches(Some(
            &json!({"typ": 3, "crd": [[[0,0],[10,0],[10,10],[0,10],[0,0]]]})
        )));
        assert!(!crossing.matches(Some(&json!({"typ": 2, "crd": [[20, 20], [30, 30]]}))));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Geometries on a coarse grid (many shared, collinear and touching points: the
        /// degenerate cases) are related without a panic, and consistently: within one way
        /// is contains the other way, and both imply intersects.
        #[test]
        fn relating_any_two_accepted_geometries_is_total_and_consistent(
            a in (1u64..=6, proptest::collection::vec((0i8..4, 0i8..4), 1..9)),
            b in (1u64..=6, proptest::collection::vec((0i8..4, 0i8..4), 1..9)),
        ) {
            let make = |(t, pts): &(u64, Vec<(i8, i8)>)| {
                let pos: Vec<Value> = pts.iter().map(|(x, y)| json!([x, y])).collect();
                let mut ring = pos.clone();
                ring.push(pos[0].clone());
                let crd = match t {
                    1 => pos[0].clone(),
                    2 | 4 => json!(pos),
                    3 => json!([ring]),
                    5 => json!([pos]),
                    _ => json!([[ring]]),
                };
                Geo::from_geo_coordinates(&json!({"typ": t, "crd": crd})).ok()
            };
            if let (Some(a), Some(b)) = (make(&a), make(&b)) {
                // Directly, so that a panic inside relate fails the test.
                let m = a.0.relate(&b.0);
                proptest::prop_assert_eq!(m.is_within(), a.satisfies(SpatialFunction::Within, &b));
                let within = a.satisfies(SpatialFunction::Within, &b);
                let contains = b.satisfies(SpatialFunction::Contains, &a);
                proptest::prop_assert_eq!(within, contains);
                if within {
                    proptest::prop_assert!(a.satisfies(SpatialFunction::Intersects, &b));
                }
            }
        }
    }

    #[test]
    fn a_partial_geo_query_is_refused() {
        for (t, g, f) in [
            (Some(1), None, None),
            (None, Some("[1,2]"), None),
            (None, None, Some(1)),
            (Some(1), Some("[1,2]"), None),
            (Some(1), None, Some(1)),
            (None, Some("[1,2]"), Some(1)),
            (Some(1), Some("[1,2]"), Some(4)),
            (Some(9), Some("[1,2]"), Some(1)),
            (Some(1), Some("[[1,2]]"), Some(1)),
        ] {
            assert!(GeoQuery::from_parts(t, g, f).is_err(), "{t:?} {g:?} {f:?}");
        }
        assert_eq!(GeoQuery::from_parts(None, None, None).ok(), Some(None));
    }
}
