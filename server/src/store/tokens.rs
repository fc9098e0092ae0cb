//! API tokens: a name, roles, repository scopes and the SHA-256 of the secret. The secret itself
//! is never stored, so a copy of the database does not hand out access.

use rusqlite::{params, OptionalExtension, Row};

use super::{now_ms, Store, StoreError};

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Row id, for `token revoke`.
    pub id: i64,
    /// Unique name ("bootstrap", "ci-acme").
    pub name: String,
    /// Role names ("publisher", "agent", "reader").
    pub roles: Vec<String>,
    /// Repository prefixes a publisher may publish under; empty means any.
    pub scopes: Vec<String>,
    /// When it was created (ms since the epoch).
    pub created_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

const COLUMNS: &str = "id, name, roles, scopes, created_at, revoked_at";

fn from_row(r: &Row) -> rusqlite::Result<(TokenRecord, String)> {
    let roles: String = r.get(2)?;
    let scopes: String = r.get(3)?;
    Ok((
        TokenRecord {
            id: r.get(0)?,
            name: r.get(1)?,
            roles: roles
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            scopes: Vec::new(),
            created_at_ms: r.get(4)?,
            revoked_at_ms: r.get(5)?,
        },
        scopes,
    ))
}

fn with_scopes((mut rec, scopes): (TokenRecord, String)) -> Result<TokenRecord, StoreError> {
    rec.scopes = serde_json::from_str(&scopes).map_err(|e| StoreError::Corrupt {
        table: "tokens",
        reason: format!(
            "token {:?} has scopes {scopes:?} that are not a JSON array: {e}",
            rec.name
        ),
    })?;
    Ok(rec)
}

impl Store {
    /// Stores a token under `name` with the SHA-256 `hash` of its secret; returns its record.
    pub fn create_token(
        &self,
        name: &str,
        roles: &[String],
        scopes: &[String],
        hash: &str,
    ) -> Result<TokenRecord, StoreError> {
        let scopes_json = serde_json::to_string(scopes).expect("strings serialise");
        let created_at_ms = now_ms();
        self.with_writer(|c| {
            let taken: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )?;
            if taken {
                return Err(StoreError::TokenNameTaken(name.to_string()));
            }
            c.execute(
                "INSERT INTO tokens (name, roles, scopes, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, roles.join(","), scopes_json, hash, created_at_ms],
            )?;
            Ok(TokenRecord {
                id: c.last_insert_rowid(),
                name: name.to_string(),
                roles: roles.to_vec(),
                scopes: scopes.to_vec(),
                created_at_ms,
                revoked_at_ms: None,
            })
        })
    }

    /// The token whose secret hashes to `hash`, revoked or not. Read from the database on every
    /// call, so a revocation by `ferry-server token revoke` (another process) applies at once.
    /// Every gRPC call and every registry token check that misses in memory comes here, so the
    /// statement is prepared once per connection: parsing it anew was about half of the query's
    /// cost in the profile.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with_reader(|c| {
            let row = c
                .prepare_cached(&format!("SELECT {COLUMNS} FROM tokens WHERE hash = ?1"))?
                .query_row([hash], from_row)
                .optional()?;
            row.map(with_scopes).transpose()
        })
    }

    /// Every token, oldest first.
    pub fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.with_reader(|c| {
            let mut stmt = c.prepare(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"))?;
            let rows = stmt.query_map([], from_row)?;
            rows.map(|r| with_scopes(r?)).collect()
        })
    }

    /// Revokes the token with this id or name; returns it, or None when there is no such token.
    /// Revoking twice keeps the first time.
    pub fn revoke_token(&self, id_or_name: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.with_writer(|c| {
            c.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2)
                 WHERE name = ?1 OR CAST(id AS TEXT) = ?1",
                params![id_or_name, now_ms()],
            )?;
            let row = c
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM tokens WHERE name = ?1 OR CAST(id AS TEXT) = ?1"
                    ),
                    [id_or_name],
                    from_row,
                )
                .optional()?;
            row.map(with_scopes).transpose()
        })
    }

    /// Whether the token with this id exists and is not revoked.
    pub fn token_active(&self, id: i64) -> Result<bool, StoreError> {
        self.with_reader(|c| {
            Ok(c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?1 AND revoked_at IS NULL)",
            )?
            .query_row([id], |r| r.get(0))?)
        })
    }

    /// How many tokens exist, revoked ones included.
    pub fn token_count(&self) -> Result<u64, StoreError> {
        self.with_reader(|c| {
            Ok(c.query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get::<_, i64>(0))? as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_find_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.token_count().unwrap(), 0);
        let roles = vec!["publisher".to_string()];
        let scopes = vec!["ghcr.io/acme".to_string()];
        let created = store.create_token("ci", &roles, &scopes, "h1").unwrap();
        let id = created.id;
        let err = store.create_token("ci", &roles, &[], "h2").unwrap_err();
        assert!(err.to_string().contains("\"ci\" already exists"), "{err}");

        let found = store.token_by_hash("h1").unwrap().unwrap();
        assert_eq!(found, created, "the record returned is the one stored");
        assert_eq!((found.id, found.roles, found.scopes), (id, roles, scopes));
        assert_eq!(store.token_by_hash("nope").unwrap(), None);
        assert_eq!(store.list_tokens().unwrap().len(), 1);

        let revoked = store.revoke_token("ci").unwrap().unwrap();
        let at = revoked.revoked_at_ms.expect("revoked");
        let again = store.revoke_token(&id.to_string()).unwrap().unwrap();
        assert_eq!(
            again.revoked_at_ms,
            Some(at),
            "the first revocation time is kept"
        );
        assert_eq!(store.revoke_token("missing").unwrap(), None);
        assert!(store
            .token_by_hash("h1")
            .unwrap()
            .unwrap()
            .revoked_at_ms
            .is_some());
    }
}
