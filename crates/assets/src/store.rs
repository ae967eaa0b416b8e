//! Storage backends: the [`Store`] trait, [`open`] (backend chosen by the location string)
//! and the embedded SQLite implementation. The PostgreSQL one is [`crate::pg::PgStore`].
//!
//! In SQLite, metadata lives in one table, content in another keyed by SHA-256 (the FSAssets
//! idea): identical bytes stored under many ids are kept once, with a reference count.

use std::path::Path;
use std::sync::{Arc, Mutex};

/// Outcome of one queued store, filled in by whichever thread commits its batch.
type Slot = Mutex<Option<Result<bool, String>>>;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::xml::{AssetBase, AssetMeta};

/// Storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The SQLite database reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row does not have the expected shape (corrupt or foreign database).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
    /// The group commit this store was part of failed.
    #[error("batch commit failed: {0}")]
    Batch(String),
    /// Unsupported database URL, or a database whose layout this server cannot use.
    #[error("unsupported database location: {0}")]
    Unsupported(String),
    /// The PostgreSQL server or client reported an error.
    #[cfg(feature = "postgres")]
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// A malformed connection string.
    #[error("bad database connection string: {0}")]
    Config(String),
    /// No pooled database connection became free in time.
    #[error("no database connection free after {0:?}")]
    PoolTimeout(std::time::Duration),
    /// The asset cannot be stored as given (API misuse, e.g. an over-long creator id).
    #[error("invalid asset: {0}")]
    Invalid(&'static str),
}

/// Longest creator id kept, in characters (OpenSim's `creatorid varchar(128)` column).
pub const MAX_CREATOR_CHARS: usize = 128;

/// What every backend does to an asset before storing it: names and descriptions are cut
/// to 64 characters (as OpenSim's stores do), and creator ids longer than
/// [`MAX_CREATOR_CHARS`] are refused rather than silently cut.
pub fn check_asset(a: &mut AssetBase) -> Result<(), StoreError> {
    crate::xml::truncate_name(&mut a.name);
    crate::xml::truncate_name(&mut a.description);
    if a.creator_id.len() > MAX_CREATOR_CHARS
        && a.creator_id.chars().nth(MAX_CREATOR_CHARS).is_some()
    {
        return Err(StoreError::Invalid("creator id longer than 128 characters"));
    }
    Ok(())
}

/// A synchronous asset store. The server calls it only from blocking threads.
pub trait Store: Send + Sync + 'static {
    /// Stores an asset unless its id already exists; returns whether it was inserted.
    /// Returns only once the asset is durable.
    fn put(&self, asset: AssetBase) -> Result<bool, StoreError>;
    /// Fetches a whole asset.
    fn get(&self, id: Uuid) -> Result<Option<AssetBase>, StoreError>;
    /// Fetches only the metadata.
    fn meta(&self, id: Uuid) -> Result<Option<AssetMeta>, StoreError>;
    /// Fetches only the bytes.
    fn data(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;
    /// Which of `ids` exist, in order.
    fn exists(&self, ids: &[Uuid]) -> Result<Vec<bool>, StoreError>;
    /// Deletes an asset; returns whether it existed.
    fn delete(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Number of assets and number of distinct content blobs.
    fn counts(&self) -> Result<(u64, u64), StoreError>;
    /// Every stored asset id (for export).
    fn ids(&self) -> Result<Vec<Uuid>, StoreError>;
}

/// Which backend a location string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Classifies `location`: `postgres://...`/`postgresql://...` URLs and
    /// OpenSimulator/Npgsql connection strings (`Server=...;Database=...;`) are PostgreSQL;
    /// `sqlite:PATH` and anything else is an SQLite file path.
    pub fn of(location: &str) -> Backend {
        let s = location.trim_start();
        if s.starts_with("sqlite:") {
            return Backend::Sqlite;
        }
        let head = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if head.starts_with("postgres://") || head.starts_with("postgresql://") {
            return Backend::Postgres;
        }
        let first = s.split(';').next().unwrap_or("");
        let npgsql = s.contains(';')
            && first.split_once('=').is_some_and(|(k, _)| {
                let k: String = k
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .flat_map(char::to_lowercase)
                    .collect();
                matches!(
                    k.as_str(),
                    "server" | "host" | "database" | "userid" | "username" | "user" | "port"
                )
            });
        if npgsql {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// Opens the store named by `location` (see [`Backend::of`]): an SQLite file path
/// (optionally `sqlite:PATH`), a `postgres://user:pass@host:port/db` URL, or an
/// OpenSimulator connection string `Server=host;Database=db;User Id=u;Password=p;`.
pub fn open(location: &str) -> Result<Box<dyn Store>, StoreError> {
    match Backend::of(location) {
        #[cfg(feature = "postgres")]
        Backend::Postgres => Ok(Box::new(crate::pg::PgStore::open(location)?)),
        #[cfg(not(feature = "postgres"))]
        Backend::Postgres => Err(StoreError::Unsupported(
            "built without the `postgres` feature".into(),
        )),
        Backend::Sqlite => {
            let path = location.strip_prefix("sqlite:").unwrap_or(location);
            Ok(Box::new(SqliteStore::open(Path::new(path))?))
        }
    }
}

/// Embedded SQLite store (WAL, `synchronous=FULL`): one writer connection, pooled readers.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// Stores waiting for the next group commit.
    queue: Mutex<Vec<(AssetBase, Arc<Slot>)>>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blobs (
    hash BLOB PRIMARY KEY,
    data BLOB NOT NULL,
    refs INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS assets (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    type INTEGER NOT NULL,
    local INTEGER NOT NULL,
    temporary INTEGER NOT NULL,
    creator TEXT NOT NULL,
    flags INTEGER NOT NULL,
    created INTEGER NOT NULL,
    hash BLOB NOT NULL
);
";

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Only takes effect on a new database; larger pages mean shorter overflow chains for
    // asset blobs.
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is fsynced before it returns, so nothing is acknowledged before durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(())
}

fn meta_from_row(row: &rusqlite::Row<'_>) -> Result<AssetMeta, rusqlite::Error> {
    let id: Vec<u8> = row.get(0)?;
    let id = Uuid::from_slice(&id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })?;
    Ok(AssetMeta {
        id,
        name: row.get(1)?,
        description: row.get(2)?,
        asset_type: row.get(3)?,
        local: row.get(4)?,
        temporary: row.get(5)?,
        creator_id: row.get(6)?,
        flags: row.get(7)?,
    })
}

/// Locks ignoring poisoning: the protected data stays valid if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn commit_batch(
    conn: &mut Connection,
    batch: &[(AssetBase, Arc<Slot>)],
) -> Result<Vec<bool>, StoreError> {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let tx = conn.transaction()?;
    let mut out = Vec::with_capacity(batch.len());
    {
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO assets (id, name, description, type, local, temporary, creator, flags, created, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        let mut bump = tx.prepare_cached("UPDATE blobs SET refs = refs + 1 WHERE hash = ?1")?;
        let mut blob =
            tx.prepare_cached("INSERT INTO blobs (hash, data, refs) VALUES (?1, ?2, 1)")?;
        for (a, _) in batch {
            let hash: [u8; 32] = Sha256::digest(&a.data).into();
            let inserted = ins.execute(params![
                a.id.as_bytes().as_slice(),
                a.name,
                a.description,
                a.asset_type,
                a.local,
                a.temporary,
                a.creator_id,
                a.flags,
                created,
                hash.as_slice()
            ])? == 1;
            if inserted && bump.execute(params![hash.as_slice()])? == 0 {
                blob.execute(params![hash.as_slice(), a.data])?;
            }
            out.push(inserted);
        }
    }
    tx.commit()?;
    Ok(out)
}

const META_COLS: &str = "id, name, description, type, local, temporary, creator, flags";

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            writer: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
            readers: Mutex::new(Vec::new()),
            path: path.to_owned(),
        })
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open(&self.path)?;
                c.busy_timeout(std::time::Duration::from_secs(30))?;
                c
            }
        };
        let r = f(&conn);
        if let Ok(mut v) = self.readers.lock()
            && v.len() < 64
        {
            v.push(conn);
        }
        Ok(r?)
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        // A poisoned lock only means another thread panicked mid-call; SQLite's own
        // transaction state is still consistent, so carry on with the connection.
        Ok(self.writer.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Store for SqliteStore {
    fn put(&self, mut a: AssetBase) -> Result<bool, StoreError> {
        check_asset(&mut a)?;
        // Group commit: queue the asset, then take the writer lock. Whoever holds it commits
        // everything queued so far in one transaction (one fsync for many stores). Results
        // are written before the lock is released, so a waiter that gets the lock next sees
        // its own result if a previous holder already committed it.
        let slot: Arc<Slot> = Arc::default();
        lock(&self.queue).push((a, slot.clone()));
        let mut conn = self.writer()?;
        if let Some(r) = lock(&slot).take() {
            return r.map_err(StoreError::Batch);
        }
        let batch = std::mem::take(&mut *lock(&self.queue));
        let result = commit_batch(&mut conn, &batch);
        for (i, (_, s)) in batch.iter().enumerate() {
            *lock(s) = Some(match &result {
                Ok(v) => Ok(v.get(i).copied().unwrap_or(false)),
                Err(e) => Err(e.to_string()),
            });
        }
        drop(conn);
        lock(&slot)
            .take()
            .unwrap_or_else(|| Err("store result missing".into()))
            .map_err(StoreError::Batch)
    }

    fn get(&self, id: Uuid) -> Result<Option<AssetBase>, StoreError> {
        self.with_reader(|c| {
            c.prepare_cached(&format!(
                "SELECT a.{}, b.data FROM assets a JOIN blobs b ON b.hash = a.hash WHERE a.id = ?1",
                META_COLS.replace(", ", ", a.")
            ))?
            .query_row(params![id.as_bytes().as_slice()], |r| {
                Ok(AssetBase::from_parts(meta_from_row(r)?, r.get(8)?))
            })
            .optional()
        })
    }

    fn meta(&self, id: Uuid) -> Result<Option<AssetMeta>, StoreError> {
        self.with_reader(|c| {
            c.prepare_cached(&format!("SELECT {META_COLS} FROM assets WHERE id = ?1"))?
                .query_row(params![id.as_bytes().as_slice()], meta_from_row)
                .optional()
        })
    }

    fn data(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_reader(|c| {
            c.prepare_cached(
                "SELECT b.data FROM assets a JOIN blobs b ON b.hash = a.hash WHERE a.id = ?1",
            )?
            .query_row(params![id.as_bytes().as_slice()], |r| r.get(0))
            .optional()
        })
    }

    fn exists(&self, ids: &[Uuid]) -> Result<Vec<bool>, StoreError> {
        self.with_reader(|c| {
            let mut st = c.prepare_cached("SELECT 1 FROM assets WHERE id = ?1")?;
            ids.iter()
                .map(|id| st.exists(params![id.as_bytes().as_slice()]))
                .collect()
        })
    }

    fn delete(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let hash: Option<Vec<u8>> = tx
            .query_row(
                "DELETE FROM assets WHERE id = ?1 RETURNING hash",
                params![id.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(hash) = hash else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE blobs SET refs = refs - 1 WHERE hash = ?1",
            params![hash],
        )?;
        tx.execute(
            "DELETE FROM blobs WHERE hash = ?1 AND refs <= 0",
            params![hash],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.with_reader(|c| {
            let a: i64 = c.query_row("SELECT COUNT(*) FROM assets", [], |r| r.get(0))?;
            let b: i64 = c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?;
            Ok((a.max(0) as u64, b.max(0) as u64))
        })
    }

    fn ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let raw: Vec<Vec<u8>> = self.with_reader(|c| {
            c.prepare("SELECT id FROM assets ORDER BY id")?
                .query_map([], |r| r.get(0))?
                .collect()
        })?;
        raw.iter()
            .map(|b| Uuid::from_slice(b).map_err(|_| StoreError::Corrupt("asset id")))
            .collect()
    }
}
