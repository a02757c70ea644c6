//! Request primitive to HTTP request target (TS-0009 clause 6.2.2): the path for `To` and
//! the query string for the parameters and filter criteria that travel there.

use model::{FilterCriteria, Request, ResultContent};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Escaped in a path segment: what would end or restructure the path, and `%` itself so
/// that the server's percent-decoding gives back exactly the segment. Non-ASCII is always
/// escaped.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Escaped in a query value: the above plus the query's own separators, and `+`, which
/// separates list items in oneM2M queries.
const QUERY: &AsciiSet = &SEGMENT.add(b'&').add(b'=').add(b'+').add(b'/');

/// The request path for a `To` value: CSE-relative `X` is `/X`, SP-relative `/X` is `/~/X`,
/// absolute `//X` is `/_/X`. Each segment is percent-encoded.
pub fn path_for(to: &str) -> String {
    let (prefix, rest) = if let Some(rest) = to.strip_prefix("//") {
        ("/_/", rest)
    } else if let Some(rest) = to.strip_prefix('/') {
        ("/~/", rest)
    } else {
        ("/", to)
    };
    let mut path = String::with_capacity(prefix.len() + rest.len());
    path.push_str(prefix);
    for (i, segment) in rest.split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    path
}

/// The query string (without `?`) for the request parameters that travel in it: `rcn`,
/// `rt`, `drt`, `atrl` and the filter criteria. Empty when there are none.
pub fn encode_query(req: &Request) -> String {
    let mut q = Query::default();
    if let Some(rcn) = req.rcn {
        q.value("rcn", ResultContent::code(rcn));
    }
    if let Some(rt) = req.rt {
        q.value("rt", rt);
    }
    if let Some(drt) = req.drt {
        q.value("drt", drt);
    }
    q.list("atrl", &req.atrl);
    filter_into(&req.fc, &mut q);
    q.0
}

/// The query string (without `?`) for filter criteria alone, in the form the server parses
/// back into an equal [`FilterCriteria`].
///
/// List items are joined with `+` (`ty=3+4`); an item that itself contains `+` is sent
/// escaped (`%2B`), and the server splits before decoding, so it arrives whole.
pub fn encode_filter(fc: &FilterCriteria) -> String {
    let mut q = Query::default();
    filter_into(fc, &mut q);
    q.0
}

fn filter_into(fc: &FilterCriteria, q: &mut Query) {
    let time = |t: &model::time::Timestamp| model::time::format(*t);
    q.opt("fu", fc.fu);
    q.opt("crb", fc.crb.as_ref().map(time));
    q.opt("cra", fc.cra.as_ref().map(time));
    q.opt("ms", fc.ms.as_ref().map(time));
    q.opt("us", fc.us.as_ref().map(time));
    q.opt("sts", fc.sts);
    q.opt("stb", fc.stb);
    q.opt("exb", fc.exb.as_ref().map(time));
    q.opt("exa", fc.exa.as_ref().map(time));
    q.list("lbl", &fc.lbl);
    let types: Vec<String> = fc.ty.iter().map(|t| t.code().to_string()).collect();
    q.list("ty", &types);
    q.opt("sza", fc.sza);
    q.opt("szb", fc.szb);
    q.list("cty", &fc.cty);
    for rn in &fc.rn {
        q.value("rn", rn);
    }
    q.opt("lim", fc.lim);
    q.opt("lvl", fc.lvl);
    q.opt("ofst", fc.ofst);
    q.opt("fo", fc.fo);
    q.opt("gmty", fc.gmty);
    q.opt("geom", fc.geom.as_ref());
    q.opt("gsf", fc.gsf);
    for (name, value) in &fc.atr {
        q.value(name, value);
    }
    q.list("clbl", &fc.clbl);
    q.list("palb", &fc.palb);
    let types = |list: &[model::ResourceType]| -> Vec<String> {
        list.iter().map(|t| t.code().to_string()).collect()
    };
    q.list("chty", &types(&fc.chty));
    q.list("pty", &types(&fc.pty));
    for (name, value) in &fc.catr {
        q.value(&format!("c.{name}"), value);
    }
    for (name, value) in &fc.patr {
        q.value(&format!("p.{name}"), value);
    }
    q.opt("cfs", fc.cfs);
    q.opt("cfq", fc.cfq.as_ref());
}

/// A query string under construction.
#[derive(Default)]
struct Query(String);

impl Query {
    fn key(&mut self, key: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(key);
        self.0.push('=');
    }

    fn value(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key);
        let value = value.to_string();
        self.0.extend(utf8_percent_encode(&value, QUERY));
    }

    fn opt(&mut self, key: &str, value: Option<impl std::fmt::Display>) {
        if let Some(v) = value {
            self.value(key, v);
        }
    }

    fn list(&mut self, key: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        self.key(key);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.0.push('+');
            }
            self.0.extend(utf8_percent_encode(item, QUERY));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Operation, ResourceType};
    use percent_encoding::percent_decode_str;

    /// The server's parsing, reduced to filter criteria.
    fn parse_filter(q: &str) -> FilterCriteria {
        let mut fc = FilterCriteria::default();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            // As the server does: list items split on `+` before decoding.
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let items: Vec<&str> = match FilterCriteria::is_list(k) {
                true => v.split('+').collect(),
                false => vec![v],
            };
            for item in items {
                let item = percent_decode_str(item).decode_utf8().expect("utf-8");
                fc.add_item(k, &item).expect("valid criterion");
            }
        }
        fc
    }

    #[test]
    fn paths_for_each_address_form() {
        assert_eq!(path_for("cse-in/ae1"), "/cse-in/ae1");
        assert_eq!(path_for("/id-in/cse-in"), "/~/id-in/cse-in");
        assert_eq!(
            path_for("//sp.example/id-in/cin1"),
            "/_/sp.example/id-in/cin1"
        );
        assert_eq!(
            path_for("cse-in/my box/é?#%"),
            "/cse-in/my%20box/%C3%A9%3F%23%25"
        );
    }

    #[test]
    fn filters_round_trip() {
        let mut fc = FilterCriteria::default();
        for (k, v) in [
            ("fu", "1"),
            ("crb", "20250102T030405,123456"),
            ("cra", "20240102T030405"),
            ("ms", "20240102T030405"),
            ("us", "20260102T030405"),
            ("exb", "20260102T030405"),
            ("exa", "20240102T030405"),
            ("sts", "3"),
            ("stb", "1"),
            ("lbl", "a"),
            ("lbl", "key=v&x y"),
            ("ty", "3"),
            ("ty", "4"),
            ("sza", "1"),
            ("szb", "100"),
            ("cty", "text/plain"),
            ("rn", "a+b"),
            ("rn", "c"),
            ("lim", "10"),
            ("lvl", "2"),
            ("ofst", "5"),
            ("fo", "2"),
            ("clbl", "room:1"),
            ("palb", "site"),
            ("chty", "4"),
            ("pty", "2+3"),
            ("c.cni", "2"),
            ("p.api", "N+x y"),
            ("cfs", "1"),
            ("cfq", "$.t GT 20 AND $.u EQ \"a b+c\""),
        ] {
            fc.add(k, v).expect("valid test criterion");
        }
        fc.add_item("lbl", "c++").expect("a label with plus signs");
        fc.add_item("cty", "application/x+json")
            .expect("a type with a plus");
        assert_eq!(parse_filter(&encode_filter(&fc)), fc);
        assert_eq!(encode_filter(&FilterCriteria::default()), "");
    }

    #[test]
    fn request_parameters_in_query() {
        let mut req = Request::new(Operation::Retrieve, "cse-in", None);
        assert_eq!(encode_query(&req), "");
        req.rcn = Some(ResultContent::ChildResourceReferences);
        req.drt = Some(2);
        req.atrl = vec!["ri".into(), "lbl".into()];
        req.fc.ty = vec![ResourceType::Container, ResourceType::ContentInstance];
        assert_eq!(encode_query(&req), "rcn=6&drt=2&atrl=ri+lbl&ty=3+4");
    }

    #[test]
    fn every_rcn_code_parses_back() {
        for n in 0..=20u64 {
            if let Ok(rcn) = ResultContent::from_code(n) {
                assert_eq!(u64::from(ResultContent::code(rcn)), n);
            }
        }
    }
}
