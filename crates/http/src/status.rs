//! The one table from oneM2M response status code to HTTP status code (TS-0009 v3.9.1
//! Table 6.3.2-1). The original code always travels in `X-M2M-RSC` as well; the HTTP status
//! is only the closest HTTP meaning.

use http::StatusCode;
use model::ResponseStatusCode;

/// TS-0009 Table 6.3.2-1, by numeric code. It lists more codes than the model knows today,
/// so that a code added to the model later already has its HTTP status.
const TABLE: &[(u16, u16)] = &[
    (1000, 202),
    (1001, 202),
    (1002, 202),
    (2000, 200),
    (2001, 201),
    (2002, 200),
    (2004, 200),
    (4000, 400),
    (4001, 501),
    (4004, 404),
    (4005, 405),
    (4008, 504),
    (4015, 415),
    (4101, 403),
    (4102, 400),
    (4103, 403),
    (4104, 409),
    (4105, 409),
    (4106, 403),
    (4107, 403),
    (4108, 403),
    (4109, 403),
    (4110, 400),
    (4111, 403),
    (4112, 403),
    (4113, 403),
    (4114, 403),
    (4115, 403),
    (4116, 403),
    (4117, 403),
    (4118, 404),
    (4119, 404),
    (4120, 400),
    (4121, 404),
    (4122, 400),
    (4123, 400),
    (4124, 409),
    (4125, 501),
    (4126, 403),
    (4127, 403),
    (4143, 400),
    (5000, 500),
    (5001, 501),
    (5103, 404),
    (5105, 403),
    (5106, 409),
    (5107, 404),
    (5203, 403),
    (5204, 500),
    (5205, 403),
    (5206, 501),
    (5207, 406),
    (5208, 403),
    (5209, 500),
    (5210, 500),
    (5211, 500),
    (5212, 500),
    (5214, 403),
    (5215, 403),
    (5216, 500),
    (5217, 500),
    (5218, 403),
    (5219, 409),
    (5220, 409),
    (5221, 500),
    (5222, 403),
    (6003, 404),
    (6005, 404),
    (6010, 400),
    (6020, 500),
    (6021, 500),
    (6022, 400),
    (6023, 400),
    (6024, 400),
    (6025, 500),
    (6026, 500),
    (6028, 409),
    (6029, 409),
    (6030, 504),
    (6031, 504),
];

/// The HTTP status for a response status code.
///
/// A code missing from the table (none of the model's codes is; a test checks that) falls
/// back on its class: 1xxx 202, 2xxx 200, 4xxx 400, anything else 500.
pub fn http_status(rsc: ResponseStatusCode) -> StatusCode {
    let code = rsc.code();
    let http = TABLE
        .iter()
        .find(|(c, _)| *c == code)
        .map_or_else(|| fallback(code), |(_, h)| *h);
    StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn fallback(code: u16) -> u16 {
    match code / 1000 {
        1 => 202,
        2 => 200,
        4 => 400,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::rsc::ALL_CODES;

    #[test]
    fn every_model_code_is_in_the_table() {
        for (rsc, n, name) in ALL_CODES {
            assert!(
                TABLE.iter().any(|(c, _)| c == n),
                "{n} {name} has no row in the TS-0009 table"
            );
            let status = http_status(*rsc);
            // The HTTP class follows the oneM2M class: success (and acceptance, 1xxx) stays
            // success, errors stay errors.
            if rsc.is_success() || (1000..2000).contains(n) {
                assert!(status.is_success(), "{n} {name} -> {status}");
            } else {
                assert!(
                    status.is_client_error() || status.is_server_error(),
                    "{n} {name} -> {status}"
                );
            }
        }
    }

    #[test]
    fn table_rows_are_unique_and_valid() {
        for (i, (code, http)) in TABLE.iter().enumerate() {
            assert!(StatusCode::from_u16(*http).is_ok(), "{code}");
            assert!(
                TABLE[i + 1..].iter().all(|(c, _)| c != code),
                "{code} listed twice"
            );
        }
    }

    #[test]
    fn spot_checks_from_the_spec() {
        use ResponseStatusCode as R;
        let cases = [
            (R::Accepted, 202),
            (R::Ok, 200),
            (R::Created, 201),
            (R::Deleted, 200),
            (R::Updated, 200),
            (R::BadRequest, 400),
            (R::ReleaseVersionNotSupported, 501),
            (R::NotFound, 404),
            (R::OperationNotAllowed, 405),
            (R::RequestTimeout, 504),
            (R::UnsupportedMediaType, 415),
            (R::ContentsUnacceptable, 400),
            (R::OriginatorHasNoPrivilege, 403),
            (R::Conflict, 409),
            (R::AlreadyExists, 409),
            (R::InternalServerError, 500),
            (R::NotImplemented, 501),
            (R::TargetNotReachable, 404),
            (R::NotAcceptable, 406),
            (R::ExternalObjectNotReachable, 404),
        ];
        for (rsc, http) in cases {
            assert_eq!(http_status(rsc).as_u16(), http, "{rsc}");
        }
        assert_eq!(fallback(4128), 400);
        assert_eq!(fallback(1003), 202);
    }
}
