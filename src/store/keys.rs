//! API keys and web sessions. Only SHA-256 digests of the secrets are stored: the secrets are
//! 256 random bits, so a digest cannot be reversed, and a stolen database opens nothing.

use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::Store;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
";

/// A key as listed: never its secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Who a request speaks for, once its key or session checked out.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    /// The session's CSRF token, for requests that came with a session cookie.
    pub csrf: Option<String>,
}

/// A new random secret (256 bits, hex) with a prefix that says what it is.
pub fn new_secret(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Whether requests must authenticate: once any key was created, revoked ones included, so
    /// revoking the last key never opens the server.
    pub fn auth_required(&self) -> anyhow::Result<bool> {
        Ok(self.conn()?.query_row("SELECT EXISTS (SELECT 1 FROM api_keys)", [], |r| r.get(0))?)
    }

    /// Create a key; returns it with its secret, which is shown once and stored only as a digest.
    /// `claim_unowned`: documents and batches from before keys existed become this key's.
    pub fn create_key(&self, name: &str, created_at: &str, claim_unowned: bool) -> anyhow::Result<(ApiKey, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            anyhow::bail!("a key's name must be 1 to 100 printable characters");
        }
        let secret = new_secret("dk_")?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO api_keys (id, name, secret_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, digest(&secret), created_at],
        )?;
        if claim_unowned {
            tx.execute("UPDATE documents SET owner = ?1 WHERE owner IS NULL", [&id])?;
            tx.execute("UPDATE batches SET owner = ?1 WHERE owner IS NULL", [&id])?;
        }
        tx.commit()?;
        Ok((ApiKey { id, name: name.to_owned(), created_at: created_at.to_owned(), revoked_at: None }, secret))
    }

    /// Revoke a key and end its sessions. Returns false when there is no such key.
    pub fn revoke_key(&self, id: &str, revoked_at: &str) -> anyhow::Result<bool> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            params![id, revoked_at],
        )?;
        conn.execute("DELETE FROM sessions WHERE key_id = ?1", [id])?;
        Ok(n > 0)
    }

    pub fn list_keys(&self) -> anyhow::Result<Vec<ApiKey>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id")?;
        let rows = stmt.query_map([], |r| {
            Ok(ApiKey { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)?, revoked_at: r.get(3)? })
        })?;
        rows.collect::<Result<Vec<_>, _>>().map_err(Into::into)
    }

    /// The live key with this secret.
    pub fn key_by_secret(&self, secret: &str) -> anyhow::Result<Option<Principal>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT id, name FROM api_keys WHERE secret_sha256 = ?1 AND revoked_at IS NULL",
                [digest(secret)],
                |r| Ok(Principal { key_id: r.get(0)?, key_name: r.get(1)?, csrf: None }),
            )
            .optional()?)
    }

    /// Start a web session for a key: returns the cookie's token (stored as a digest).
    pub fn create_session(&self, key_id: &str, now: i64, lifetime_s: i64) -> anyhow::Result<String> {
        let token = new_secret("ds_")?;
        let csrf = new_secret("")?;
        let conn = self.conn()?;
        conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
        conn.execute(
            "INSERT INTO sessions (token_sha256, key_id, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![digest(&token), key_id, csrf, now.saturating_add(lifetime_s)],
        )?;
        Ok(token)
    }

    /// The live session with this token, with its key.
    pub fn session(&self, token: &str, now: i64) -> anyhow::Result<Option<Principal>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT k.id, k.name, s.csrf FROM sessions s JOIN api_keys k ON k.id = s.key_id
                 WHERE s.token_sha256 = ?1 AND s.expires_at > ?2 AND k.revoked_at IS NULL",
                params![digest(token), now],
                |r| Ok(Principal { key_id: r.get(0)?, key_name: r.get(1)?, csrf: Some(r.get(2)?) }),
            )
            .optional()?)
    }

    pub fn end_session(&self, token: &str) -> anyhow::Result<()> {
        self.conn()?.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [digest(token)])?;
        Ok(())
    }
}
