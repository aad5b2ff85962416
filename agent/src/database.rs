//! The daemon's state database: one SQLite file under the state directory, in WAL mode, every
//! change one transaction, the schema versioned by `PRAGMA user_version` and brought forward by
//! the migrations below. A crash at any point leaves the last committed state.

use std::path::Path;

use rusqlite::Connection;

use crate::Error;

/// The database file's name inside the state directory.
pub const FILE_NAME: &str = "state.db";

/// Schema migrations, oldest first; `user_version` is the number applied. Append only: a
/// released migration is never edited.
const MIGRATIONS: &[&str] = &[
    // 1: key metadata and the authority's records.
    "CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        purpose TEXT NOT NULL CHECK (purpose IN ('device', 'issuance')),
        backend TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE authority (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        issuer TEXT NOT NULL,
        status_uri TEXT NOT NULL,
        active_key TEXT NOT NULL REFERENCES keys(name),
        next_status_index INTEGER NOT NULL,
        status_sequence INTEGER NOT NULL,
        last_status_digest BLOB NOT NULL CHECK (length(last_status_digest) = 32)
    ) STRICT;
    CREATE TABLE issuance_keys (
        position INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE REFERENCES keys(name)
    ) STRICT;
    CREATE TABLE grants (
        id BLOB PRIMARY KEY,
        principal TEXT NOT NULL,
        status_index INTEGER NOT NULL UNIQUE,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        device_kid BLOB NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE TABLE challenges (
        challenge BLOB PRIMARY KEY,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE status_lists (
        sequence INTEGER PRIMARY KEY,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        list BLOB NOT NULL
    ) STRICT;",
    // 2: a challenge made as a TPM credential is bound to that TPM's attestation key.
    "ALTER TABLE challenges ADD COLUMN tpm_ak_name TEXT;
    ALTER TABLE challenges ADD COLUMN tpm_ek_sha256 TEXT;",
    // 3: the principal the authority intends a challenge for (NULL: named at grant time).
    "ALTER TABLE challenges ADD COLUMN principal TEXT;",
];

/// Opens (creating if needed) the database in `state_dir` and applies pending migrations.
pub fn open(state_dir: &Path) -> Result<Connection, Error> {
    let path = state_dir.join(FILE_NAME);
    let mut conn = Connection::open(&path).map_err(db(&path))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )
    .map_err(db(&path))?;
    migrate(&mut conn).map_err(|e| match e {
        Error::Database { reason, .. } => Error::Database { path: path.clone(), reason },
        other => other,
    })?;
    Ok(conn)
}

/// The schema version this build writes.
pub fn schema_version() -> u32 {
    MIGRATIONS.len() as u32
}

fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let unknown = Path::new("");
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db(unknown))?;
    if current > schema_version() {
        return Err(Error::Database {
            path: unknown.to_owned(),
            reason: format!(
                "schema version {current} is newer than this warrantd understands ({}); \
                 run the newer warrantd or restore a backup",
                schema_version()
            ),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(db(unknown))?;
        tx.execute_batch(sql).map_err(db(unknown))?;
        tx.pragma_update(None, "user_version", i as u32 + 1).map_err(db(unknown))?;
        tx.commit().map_err(db(unknown))?;
    }
    Ok(())
}

/// Maps a SQLite error to [`Error::Database`] naming `path`.
pub(crate) fn db(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::Database { path: path.to_owned(), reason: e.to_string() }
}

/// Maps a SQLite error where the file is not at hand (inside a transaction).
pub(crate) fn sql(e: rusqlite::Error) -> Error {
    Error::Database { path: FILE_NAME.into(), reason: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_every_migration_and_reopens_without_change() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, schema_version());
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        let conn = open(dir.path()).unwrap();
        let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, schema_version());
    }

    #[test]
    fn challenges_open_before_the_principal_column_keep_no_principal() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        for (i, sql) in MIGRATIONS[..2].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as u32 + 1).unwrap();
        }
        conn.execute("INSERT INTO challenges (challenge, expires_at) VALUES (x'01', 9)", []).unwrap();
        migrate(&mut conn).unwrap();
        let principal: Option<String> =
            conn.query_row("SELECT principal FROM challenges", [], |r| r.get(0)).unwrap();
        // The grant for such a challenge must then name the principal itself.
        assert_eq!(principal, None);
    }

    #[test]
    fn a_database_from_a_newer_warrantd_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        conn.pragma_update(None, "user_version", schema_version() + 1).unwrap();
        drop(conn);
        let err = open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("newer than this warrantd understands"), "{err}");
        assert!(err.to_string().contains(FILE_NAME), "{err}");
    }
}
