//! Who a request speaks for: API keys and web sessions as operations for the HTTP layer (the CLI
//! creates and revokes keys on the store directly, without loading a model).

use super::Docent;
use crate::domain::Scope;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::store::Principal;

/// How long a web session lasts after sign-in.
pub const SESSION_LIFETIME_S: i64 = 12 * 3600;

/// Who a request speaks for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    /// The key's name, for "signed in as".
    pub name: Option<String>,
    /// The session's CSRF token: present for requests authenticated by the session cookie.
    pub csrf: Option<String>,
}

impl Caller {
    /// A request on a server without keys.
    pub fn open() -> Self {
        Self { scope: Scope::Open, name: None, csrf: None }
    }

    fn of(p: Principal) -> Self {
        Self { scope: Scope::Key(p.key_id), name: Some(p.key_name), csrf: p.csrf }
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Docent {
    /// Whether requests must carry a key or a session (once any key was created).
    pub async fn auth_required(&self) -> AppResult<bool> {
        self.blocking(|s| s.auth_required()).await
    }

    /// The caller for an API key; `unauthorized` for an unknown or revoked one.
    pub async fn caller_for_key(&self, secret: &str) -> AppResult<Caller> {
        let secret = secret.to_owned();
        match self.blocking(move |s| s.key_by_secret(&secret)).await? {
            Some(p) => Ok(Caller::of(p)),
            None => Err(AppError::new(ErrorCode::Unauthorized, "the API key is not valid (unknown or revoked)")),
        }
    }

    /// The caller for a session cookie, if the session is live.
    pub async fn caller_for_session(&self, token: &str) -> AppResult<Option<Caller>> {
        let token = token.to_owned();
        Ok(self.blocking(move |s| s.session(&token, unix_now())).await?.map(Caller::of))
    }

    /// Sign in with an API key: a new session token for the cookie.
    pub async fn sign_in(&self, secret: &str) -> AppResult<String> {
        let caller = self.caller_for_key(secret).await?;
        let Some(key_id) = caller.scope.owner().map(str::to_owned) else {
            return Err(AppError::internal(anyhow::anyhow!("a key without an id")));
        };
        self.blocking(move |s| s.create_session(&key_id, unix_now(), SESSION_LIFETIME_S)).await
    }

    pub async fn sign_out(&self, token: &str) -> AppResult<()> {
        let token = token.to_owned();
        self.blocking(move |s| s.end_session(&token)).await
    }
}
