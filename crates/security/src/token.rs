//! Token verification for token-based dynamic authorization (TS-0003 clauses 7.3.2.4-7.3.2.6).
//!
//! A token is a signed JWT (JWS compact form) issued by a Dynamic Authorization System. The
//! CSE is configured with the issuers it trusts, each with one key: an ES256 public key or an
//! HS256 shared secret. A token is accepted only when every check holds, in this order:
//!
//! 1. it parses (three base64url parts, JSON header and claims): otherwise [`TokenError::Malformed`];
//! 2. its issuer is configured: otherwise [`TokenError::UnknownIssuer`];
//! 3. its `alg` is the one algorithm of that issuer's key (an HS256 token is never checked
//!    against an ES256 key, or the reverse): otherwise [`TokenError::AlgorithmNotAllowed`];
//! 4. the signature verifies (by `jsonwebtoken`, no crypto of ours): [`TokenError::BadSignature`];
//! 5. not-before and expiry hold now: [`TokenError::NotYetValid`], [`TokenError::Expired`];
//! 6. the audience names this CSE: [`TokenError::WrongAudience`];
//! 7. the holder is the request's originator: [`TokenError::WrongHolder`].
//!
//! Claims are read under both spellings in use: the JWT claim names of TS-0003 (`iss`,
//! `aud`, `azp`/`sub` for the holder, `nbf`, `exp`, `jti`) and the oneM2M short names of
//! `m2m:tokenClaimSet` that some DAS implementations put straight into the payload (`tkis`,
//! `tkau`, `tkhd`, `tknb`, `tkna`, `tkid`, `tkps`), plus `hld` and `perms`. When one fact is
//! given under two names with different values the token is malformed: a verifier must not
//! pick one reading when an issuer may have meant the other.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use model::{Error as ModelError, ResponseStatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// Shortest HS256 secret accepted: 256 bits, the size of the MAC (RFC 7518 clause 3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a token was refused. Each variant maps to one response status code
/// ([`TokenError::rsc`]): a token that cannot be read is the originator's bad request (4000);
/// a token that can be read but does not hold is no privilege (4103).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a JWS compact token with JSON header and claims, or claims of the wrong shape.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The issuer is not configured in this CSE.
    #[error("token issuer '{0}' is not trusted")]
    UnknownIssuer(String),
    /// The token's `alg` is not the algorithm of its issuer's key.
    #[error("token algorithm {0} is not allowed for its issuer")]
    AlgorithmNotAllowed(String),
    /// The signature does not verify against the issuer's key.
    #[error("token signature does not verify")]
    BadSignature,
    /// The token's expiry (`exp`/`tkna`) has passed.
    #[error("token expired")]
    Expired,
    /// The token's not-before (`nbf`/`tknb`) is still ahead.
    #[error("token not yet valid")]
    NotYetValid,
    /// The audience does not name this CSE.
    #[error("token audience does not name this CSE")]
    WrongAudience,
    /// The holder is not the request's originator.
    #[error("token holder '{0}' is not the originator")]
    WrongHolder(String),
    /// A configured key could not be loaded (start-up only, never a request).
    #[error("token key: {0}")]
    Key(String),
}

impl TokenError {
    /// The one response status code of this refusal.
    pub fn rsc(&self) -> ResponseStatusCode {
        match self {
            Self::Malformed(_) => ResponseStatusCode::BadRequest,
            Self::Key(_) => ResponseStatusCode::InternalServerError,
            _ => ResponseStatusCode::OriginatorHasNoPrivilege,
        }
    }
}

impl From<TokenError> for ModelError {
    fn from(e: TokenError) -> Self {
        ModelError::new(e.rsc(), e.to_string())
    }
}

/// One issuer's verification key. The HS256 secret is kept only inside the `jsonwebtoken`
/// key, which lives as long as the configuration.
// NOTE(token): `DecodingKey` holds its own copy of an HMAC secret and does not zeroize it on
// drop; the copy we read from the file is zeroized, and the key itself is never printed.
struct IssuerKey {
    alg: Algorithm,
    key: DecodingKey,
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerKey({:?})", self.alg)
    }
}

/// The token issuers this CSE trusts, by issuer name.
#[derive(Debug, Default)]
pub struct Issuers {
    by_name: HashMap<String, IssuerKey>,
}

/// What a token must match for one request.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The names this CSE answers to in `aud` (`id-in`, `/id-in`, `//sp/id-in`).
    pub audience: &'a [String],
    /// The originator's identifier in every form a holder may be written in.
    pub holder: &'a [String],
    /// The current time, seconds since the epoch.
    pub now: i64,
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// `jti`/`tkid`, or empty.
    pub id: String,
    /// The issuer.
    pub issuer: String,
    /// The holder, as written in the token.
    pub holder: String,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
    /// The permissions it grants (`tkps.pm`).
    pub permissions: Vec<TokenPermission>,
}

/// A token verified for storage ([`Issuers::inspect`]): the verified facts, and the
/// claims a `<token>` resource shows in plaintext.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectedToken {
    /// Issuer, holder, ID, expiry and permissions, as a request's token has them.
    pub token: VerifiedToken,
    /// `nbf`/`tknb`, seconds since the epoch.
    pub not_before: Option<i64>,
    /// `aud`/`tkau`.
    pub audience: Vec<String>,
    /// `tkvr`/`vr`.
    pub version: Option<String>,
    /// `tknm`.
    pub name: Option<String>,
    /// `tkex`, as a string.
    pub extension: Option<String>,
    /// `tkps` (or `perms`, `permissions`) as written, an `m2m:tokenPermissions`.
    pub permissions: Option<Value>,
}

/// One `m2m:tokenPermission`: rules and roles, for some resources or all.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenPermission {
    /// `ris`: the resources it applies to; empty means every resource.
    pub resource_ids: Vec<String>,
    /// `pv`: an `m2m:setOfAcrs`, evaluated as extra access control rules.
    pub privileges: Option<Value>,
    /// `rids`: Role-IDs the holder is verified to hold.
    pub role_ids: Vec<String>,
}

impl Issuers {
    /// No trusted issuer: every token is refused as [`TokenError::UnknownIssuer`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Trusts `name` with an ES256 (P-256) public key in PEM.
    pub fn add_es256_pem(&mut self, name: &str, pem: &[u8]) -> Result<(), TokenError> {
        let key = DecodingKey::from_ec_pem(pem)
            .map_err(|e| TokenError::Key(format!("issuer '{name}': not an EC public key: {e}")))?;
        self.insert(name, Algorithm::ES256, key)
    }

    /// Trusts `name` with an HS256 shared secret of at least [`MIN_SECRET_BYTES`].
    pub fn add_hs256_secret(
        &mut self,
        name: &str,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<(), TokenError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenError::Key(format!(
                "issuer '{name}': the HS256 secret needs at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        self.insert(name, Algorithm::HS256, DecodingKey::from_secret(&secret))
    }

    /// Reads an ES256 public key file (PEM).
    pub fn load_es256_file(&mut self, name: &str, path: &Path) -> Result<(), TokenError> {
        let pem =
            std::fs::read(path).map_err(|e| TokenError::Key(format!("{}: {e}", path.display())))?;
        self.add_es256_pem(name, &pem)
    }

    /// Reads an HS256 secret file: the raw bytes, trailing line breaks removed.
    pub fn load_hs256_file(&mut self, name: &str, path: &Path) -> Result<(), TokenError> {
        let mut bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| TokenError::Key(format!("{}: {e}", path.display())))?,
        );
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        self.add_hs256_secret(name, bytes)
    }

    fn insert(&mut self, name: &str, alg: Algorithm, key: DecodingKey) -> Result<(), TokenError> {
        if name.is_empty() {
            return Err(TokenError::Key("an issuer needs a name".into()));
        }
        if self
            .by_name
            .insert(name.to_owned(), IssuerKey { alg, key })
            .is_some()
        {
            return Err(TokenError::Key(format!(
                "issuer '{name}' is configured twice"
            )));
        }
        Ok(())
    }

    /// Verifies one token for one request (see the module documentation for the order).
    pub fn verify(
        &self,
        token: &str,
        expect: &Expectations<'_>,
    ) -> Result<VerifiedToken, TokenError> {
        let (issuer, claims) = self.signed_claims(token)?;
        check(&claims, issuer, expect)
    }

    /// Verifies a token that is to be stored (a `<token>` resource, TS-0001 clause 9.6.39)
    /// rather than presented: checks 1 to 5 as [`Issuers::verify`] makes them, and the
    /// token must have a holder and name an audience, but neither is compared with a
    /// request (the token may be meant for another CSE, and its holder presents it later).
    /// Returns what the token says, for the resource's plaintext attributes.
    pub fn inspect(&self, token: &str, now: i64) -> Result<InspectedToken, TokenError> {
        let (issuer, claims) = self.signed_claims(token)?;
        let audience = one_list(&claims, &["aud", "tkau"])?;
        let holder = one_str(&claims, &["tkhd", "hld", "holder", "azp", "sub"])?
            .ok_or_else(|| TokenError::Malformed("no holder (tkhd/hld/azp/sub)".into()))?;
        let expect = Expectations {
            audience: &audience,
            holder: std::slice::from_ref(&holder),
            now,
        };
        let token = check(&claims, issuer, &expect)?;
        let string = |names: &[&str]| one_str(&claims, names);
        Ok(InspectedToken {
            not_before: one_time(&claims, &["nbf", "tknb"])?,
            audience,
            version: string(&["tkvr", "vr"])?,
            name: string(&["tknm"])?,
            extension: match one_value(&claims, &["tkex"])? {
                None => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            },
            permissions: one_value(&claims, &["tkps", "perms", "permissions"])?.cloned(),
            token,
        })
    }

    /// Checks 1 to 4: the token parses, its issuer is trusted, its algorithm is the
    /// issuer's and its signature verifies. Returns the issuer and the verified claims.
    fn signed_claims(&self, token: &str) -> Result<(String, Value), TokenError> {
        if token.split('.').count() != 3 {
            return Err(TokenError::Malformed(
                "not a JWS in compact form (encrypted tokens are not supported)".into(),
            ));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
        // The claims are read once unverified, only to learn the issuer and so the key.
        let unverified = claims(token, None)?;
        let issuer = one_str(&unverified, &["iss", "tkis"])?
            .ok_or_else(|| TokenError::Malformed("no issuer (iss/tkis)".into()))?;
        let key = self
            .by_name
            .get(&issuer)
            .ok_or_else(|| TokenError::UnknownIssuer(issuer.clone()))?;
        if header.alg != key.alg {
            return Err(TokenError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
        }
        let claims = claims(token, Some(key))?;
        Ok((issuer, claims))
    }
}

/// The claims as JSON: with a key, only after the signature verified.
fn claims(token: &str, key: Option<&IssuerKey>) -> Result<Value, TokenError> {
    let mut validation = Validation::new(key.map_or(Algorithm::HS256, |k| k.alg));
    // Time, audience and issuer are checked by `check`, under both claim spellings.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let unused = DecodingKey::from_secret(&[]);
    let decoding = match key {
        Some(k) => &k.key,
        None => {
            validation.insecure_disable_signature_validation();
            &unused
        }
    };
    match jsonwebtoken::decode::<Value>(token, decoding, &validation) {
        Ok(data) if data.claims.is_object() => Ok(data.claims),
        Ok(_) => Err(TokenError::Malformed(
            "the claims are not a JSON object".into(),
        )),
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Err(TokenError::BadSignature),
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                Err(TokenError::AlgorithmNotAllowed("mismatch".into()))
            }
            _ => Err(TokenError::Malformed(e.to_string())),
        },
    }
}

fn check(
    claims: &Value,
    issuer: String,
    expect: &Expectations<'_>,
) -> Result<VerifiedToken, TokenError> {
    let not_after = one_time(claims, &["exp", "tkna"])?
        .ok_or_else(|| TokenError::Malformed("no expiry (exp/tkna)".into()))?;
    if let Some(nbf) = one_time(claims, &["nbf", "tknb"])? {
        if expect.now < nbf {
            return Err(TokenError::NotYetValid);
        }
    }
    if expect.now >= not_after {
        return Err(TokenError::Expired);
    }
    let audience = one_list(claims, &["aud", "tkau"])?;
    if !audience
        .iter()
        .any(|a| expect.audience.iter().any(|ours| ours == a))
    {
        return Err(TokenError::WrongAudience);
    }
    let holder = one_str(claims, &["tkhd", "hld", "holder", "azp", "sub"])?
        .ok_or_else(|| TokenError::Malformed("no holder (tkhd/hld/azp/sub)".into()))?;
    if !expect.holder.contains(&holder) {
        return Err(TokenError::WrongHolder(holder));
    }
    let id = one_str(claims, &["jti", "tkid"])?.unwrap_or_default();
    let permissions = match one_value(claims, &["tkps", "perms", "permissions"])? {
        None => Vec::new(),
        Some(v) => permissions(v)?,
    };
    Ok(VerifiedToken {
        id,
        issuer,
        holder,
        not_after,
        permissions,
    })
}

/// The value of a fact that may be spelled several ways; different values under two
/// spellings make the token malformed.
fn one_value<'a>(claims: &'a Value, names: &[&str]) -> Result<Option<&'a Value>, TokenError> {
    let mut found: Option<(&str, &Value)> = None;
    for name in names {
        if let Some(v) = claims.get(*name) {
            match found {
                Some((first, seen)) if seen != v => {
                    return Err(TokenError::Malformed(format!(
                        "'{first}' and '{name}' disagree"
                    )))
                }
                Some(_) => {}
                None => found = Some((name, v)),
            }
        }
    }
    Ok(found.map(|(_, v)| v))
}

fn one_str(claims: &Value, names: &[&str]) -> Result<Option<String>, TokenError> {
    match one_value(claims, names)? {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(TokenError::Malformed(format!(
            "'{}' must be a non-empty string",
            names.join("/")
        ))),
    }
}

fn one_list(claims: &Value, names: &[&str]) -> Result<Vec<String>, TokenError> {
    let bad =
        || TokenError::Malformed(format!("'{}' must be a string or strings", names.join("/")));
    match one_value(claims, names)? {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// A time claim: a NumericDate (seconds) or a oneM2M timestamp (`20261128T120000`).
fn one_time(claims: &Value, names: &[&str]) -> Result<Option<i64>, TokenError> {
    let bad = || TokenError::Malformed(format!("'{}' is not a time", names.join("/")));
    match one_value(claims, names)? {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.floor() as i64))
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(s)) => model::time::parse(s)
            .map(|t| Some(t.timestamp()))
            .map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// `m2m:tokenPermissions`: `{"pm": [{"ris": [..], "pv": {..}, "rids": [..]}]}` (a bare list
/// of permissions is accepted too).
fn permissions(v: &Value) -> Result<Vec<TokenPermission>, TokenError> {
    let bad = |why: &str| TokenError::Malformed(format!("permissions: {why}"));
    let list = match v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("pm") {
            Some(Value::Array(a)) => a,
            None => return Ok(Vec::new()),
            Some(_) => return Err(bad("pm must be a list")),
        },
        _ => return Err(bad("must be an object")),
    };
    list.iter()
        .map(|p| {
            let o = p
                .as_object()
                .ok_or_else(|| bad("each permission is an object"))?;
            if let Some(k) = o
                .keys()
                .find(|k| !matches!(k.as_str(), "ris" | "pv" | "rids"))
            {
                return Err(bad(&format!("unknown member '{k}'")));
            }
            let strings = |name: &str| -> Result<Vec<String>, TokenError> {
                match o.get(name) {
                    None => Ok(Vec::new()),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| bad(&format!("{name} must hold strings")))
                        })
                        .collect(),
                    Some(_) => Err(bad(&format!("{name} must be a list"))),
                }
            };
            let privileges = match o.get("pv") {
                None => None,
                Some(pv) if pv.is_object() => Some(pv.clone()),
                Some(_) => return Err(bad("pv must be an m2m:setOfAcrs object")),
            };
            Ok(TokenPermission {
                resource_ids: strings("ris")?,
                privileges,
                role_ids: strings("rids")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000;

    fn issuers() -> Issuers {
        let mut i = Issuers::new();
        i.add_hs256_secret("das1", Zeroizing::new(SECRET.to_vec()))
            .expect("secret");
        i
    }

    fn sign(claims: &Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("sign")
    }

    fn good() -> Value {
        json!({"iss": "das1", "aud": ["id-in"], "sub": "Cx", "exp": NOW + 60, "nbf": NOW - 60,
               "jti": "t1", "tkps": {"pm": [{"ris": ["cnt1"], "pv": {"acr": [{"acor": ["Cx"], "acop": 2}]}, "rids": ["r1"]}]}})
    }

    fn verify(token: &str) -> Result<VerifiedToken, TokenError> {
        let aud = vec!["id-in".to_owned(), "/id-in".to_owned()];
        let holder = vec!["Cx".to_owned(), "//sp/id-in/Cx".to_owned()];
        issuers().verify(
            token,
            &Expectations {
                audience: &aud,
                holder: &holder,
                now: NOW,
            },
        )
    }

    /// A token to be stored is verified without a request: any holder and audience, but
    /// the signature, issuer and period still hold, and its claims come back as written.
    #[test]
    fn a_token_to_store_is_inspected() {
        let i = issuers();
        let mut c = good();
        c["sub"] = json!("Csomeone-else");
        c["aud"] = json!(["id-other"]);
        c["tknm"] = json!("reader");
        let t = i.inspect(&sign(&c, SECRET), NOW).expect("inspected");
        assert_eq!(t.token.holder, "Csomeone-else");
        assert_eq!(t.audience, vec!["id-other"]);
        assert_eq!(t.not_before, Some(NOW - 60));
        assert_eq!(t.name.as_deref(), Some("reader"));
        assert_eq!(t.permissions, Some(c["tkps"].clone()));
        let bad = |c: &Value, secret: &[u8]| i.inspect(&sign(c, secret), NOW).err();
        assert_eq!(
            bad(&c, b"another-secret-another-secret-!!"),
            Some(TokenError::BadSignature)
        );
        let mut expired = c.clone();
        expired["exp"] = json!(NOW - 1);
        assert_eq!(bad(&expired, SECRET), Some(TokenError::Expired));
        let mut no_audience = c.clone();
        no_audience["aud"] = json!([]);
        assert_eq!(bad(&no_audience, SECRET), Some(TokenError::WrongAudience));
        let mut no_holder = c;
        no_holder.as_object_mut().map(|m| m.remove("sub"));
        assert!(matches!(
            bad(&no_holder, SECRET),
            Some(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn a_good_token_verifies_with_its_permissions() {
        let t = verify(&sign(&good(), SECRET)).expect("valid");
        assert_eq!(
            (t.id.as_str(), t.issuer.as_str(), t.holder.as_str()),
            ("t1", "das1", "Cx")
        );
        assert_eq!(t.permissions.len(), 1);
        assert_eq!(t.permissions[0].role_ids, vec!["r1"]);
        assert_eq!(t.permissions[0].resource_ids, vec!["cnt1"]);
    }

    #[test]
    fn onem2m_short_names_are_read_too() {
        let claims = json!({"tkis": "das1", "tkau": "/id-in", "tkhd": "//sp/id-in/Cx",
                            "tkna": "20300101T000000", "tknb": "20200101T000000", "tkid": "t2"});
        let t = verify(&sign(&claims, SECRET)).expect("valid");
        assert_eq!(t.id, "t2");
        assert!(t.permissions.is_empty());
    }

    #[test]
    fn every_failure_has_its_reason_and_code() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            sign(&c, SECRET)
        };
        let cases: Vec<(String, TokenError)> = vec![
            (
                sign(&good(), b"another-secret-another-secret-xx"),
                TokenError::BadSignature,
            ),
            (with("exp", json!(NOW - 1)), TokenError::Expired),
            (with("nbf", json!(NOW + 10)), TokenError::NotYetValid),
            (with("aud", json!(["id-mn"])), TokenError::WrongAudience),
            (
                with("sub", json!("Cother")),
                TokenError::WrongHolder("Cother".into()),
            ),
            (
                with("iss", json!("das9")),
                TokenError::UnknownIssuer("das9".into()),
            ),
        ];
        for (token, want) in cases {
            let got = verify(&token).expect_err("refused");
            assert_eq!(got, want);
            assert_eq!(got.rsc(), ResponseStatusCode::OriginatorHasNoPrivilege);
        }
        for junk in ["", "abc", "a.b.c", "a.b.c.d.e", &with("tkhd", json!("Cy"))] {
            let got = verify(junk).expect_err("refused");
            assert!(matches!(got, TokenError::Malformed(_)), "{junk}: {got:?}");
            assert_eq!(got.rsc(), ResponseStatusCode::BadRequest);
        }
    }

    #[test]
    fn an_hs256_token_is_not_checked_against_an_es256_issuer() {
        let mut i = Issuers::new();
        // A P-256 public key (from RFC 7515 appendix A.3's key pair, re-encoded).
        let pem = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n-----END PUBLIC KEY-----\n";
        i.add_es256_pem("das1", pem).expect("ec key");
        let aud = vec!["id-in".to_owned()];
        let holder = vec!["Cx".to_owned()];
        let e = Expectations {
            audience: &aud,
            holder: &holder,
            now: NOW,
        };
        assert!(matches!(
            i.verify(&sign(&good(), SECRET), &e),
            Err(TokenError::AlgorithmNotAllowed(_))
        ));
        assert!(Issuers::new()
            .add_hs256_secret("x", Zeroizing::new(b"short".to_vec()))
            .is_err());
    }
}
