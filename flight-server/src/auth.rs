//! Who is calling: HTTP Basic credentials checked against argon2 hashes from
//! the config (the `Handshake` login of JDBC and ADBC), then bearer tokens on
//! every call.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::{Role, UserConfig};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::session::Session;
use crate::ttl_map::TtlMap;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Login name.
    pub(crate) user: String,
    /// What the user may do.
    pub(crate) role: Role,
    /// The session of the caller's login (a new one for each call made
    /// with Basic credentials instead of a token).
    pub(crate) session: Session,
}

/// Checks credentials and tokens.
#[derive(Debug)]
pub(crate) struct Authenticator {
    users: HashMap<String, (Role, String)>,
    tokens: TtlMap<Identity>,
}

impl Authenticator {
    /// Users from the config; tokens live `token_ttl` after their last use.
    pub(crate) fn new(users: &[UserConfig], token_ttl: Duration) -> Self {
        Authenticator {
            users: users
                .iter()
                .map(|u| (u.name.clone(), (u.role, u.password_hash.clone())))
                .collect(),
            tokens: TtlMap::new(token_ttl),
        }
    }

    /// Checks the `authorization: Basic …` header of a handshake and issues a bearer token.
    pub(crate) fn login(&self, metadata: &MetadataMap) -> Result<(Identity, String), Status> {
        let header = authorization(metadata)?.ok_or_else(|| {
            Status::unauthenticated(
                "no credentials: log in with HTTP Basic (username and password) in the handshake",
            )
        })?;
        let Some(basic) = strip_scheme(header, "basic") else {
            return Err(Status::unauthenticated(
                "the handshake needs an 'authorization: Basic …' header with username and password",
            ));
        };
        let identity = self.check_basic(basic)?;
        let token = self.tokens.insert(identity.clone());
        Ok((identity, token))
    }

    /// The caller of a request: a bearer token from a login, or Basic credentials.
    pub(crate) fn identify(&self, metadata: &MetadataMap) -> Result<Identity, Status> {
        let header = authorization(metadata)?.ok_or_else(|| {
            Status::unauthenticated(
                "no credentials: log in with username and password (HTTP Basic handshake) first",
            )
        })?;
        if let Some(token) = strip_scheme(header, "bearer") {
            return self.tokens.get(token.trim()).ok_or_else(|| {
                Status::unauthenticated("the bearer token is unknown or expired: log in again")
            });
        }
        if let Some(basic) = strip_scheme(header, "basic") {
            return self.check_basic(basic);
        }
        Err(Status::unauthenticated(
            "unsupported authorization scheme: use Basic or Bearer",
        ))
    }

    fn check_basic(&self, encoded: &str) -> Result<Identity, Status> {
        let malformed = || {
            Status::unauthenticated("malformed Basic credentials: expected base64 of user:password")
        };
        let decoded = BASIC.decode(encoded.trim()).map_err(|_| malformed())?;
        let text = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (user, password) = text.split_once(':').ok_or_else(malformed)?;
        let (role, hash) = match self.users.get(user) {
            Some((role, hash)) => (Some(*role), hash.as_str()),
            // verify against a fixed hash anyway, so timing does not reveal which names exist
            None => (None, dummy_hash()),
        };
        let verified = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        match (role, verified) {
            (Some(role), true) => Ok(Identity {
                user: user.to_string(),
                role,
                session: Session::default(),
            }),
            _ => Err(Status::unauthenticated(format!(
                "wrong username or password (user '{user}')"
            ))),
        }
    }
}

/// Base64 of Basic credentials, padded or not (the Go Flight client, under
/// ADBC, sends them unpadded).
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn authorization(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    match metadata.get("authorization") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Status::unauthenticated("the authorization header is not ASCII")),
    }
}

/// The rest of `header` after `scheme ` (case-insensitive).
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.trim().split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random source for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use tonic::metadata::MetadataValue;

    fn with_auth(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert(
            "authorization",
            MetadataValue::try_from(value).expect("ascii header"),
        );
        m
    }

    #[test]
    fn login_then_bearer() -> Result<(), Status> {
        let users = vec![UserConfig {
            name: "ana".into(),
            role: Role::Analyst,
            password_hash: hash_password("s3cret").map_err(Status::internal)?,
        }];
        let auth = Authenticator::new(&users, Duration::from_secs(60));
        let basic = format!("Basic {}", STANDARD.encode("ana:s3cret"));
        let (who, token) = auth.login(&with_auth(&basic))?;
        assert_eq!(who.role, Role::Analyst);
        assert_eq!(auth.identify(&with_auth(&format!("Bearer {token}")))?, who);
        let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("ana:s3cret"));
        let again = auth.login(&with_auth(&unpadded))?.0;
        assert_eq!((&again.user, again.role), (&who.user, who.role));
        assert_ne!(
            again.session, who.session,
            "each login has a session of its own"
        );

        let wrong = format!("Basic {}", STANDARD.encode("ana:guess"));
        let e = auth.login(&with_auth(&wrong)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        let nobody = format!("Basic {}", STANDARD.encode("bob:s3cret"));
        assert!(auth.login(&with_auth(&nobody)).is_err());
        let e = auth.identify(&with_auth("Bearer forged")).unwrap_err();
        assert!(e.message().contains("log in again"), "{}", e.message());
        assert!(auth.identify(&MetadataMap::new()).is_err());
        Ok(())
    }
}
