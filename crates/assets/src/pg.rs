//! PostgreSQL backend on OpenSimulator's own `assets` table.
//!
//! The table is the one OpenSimulator's PGSQL asset store creates (its `AssetStore`
//! migrations up to version 9): `id uuid` primary key, `name`/`description` `varchar(64)`,
//! `"assetType" smallint`, `local`/`temporary` booleans, `data bytea`, `create_time` and
//! `access_time` (Unix seconds), `asset_flags integer`, `creatorid varchar(128)`. So this
//! server can serve an existing OpenSimulator asset database, and OpenSimulator can read
//! what it stores (a new table is recorded in OpenSim's `migrations` table at version 9).
//! Content is therefore not de-duplicated here: every row holds its own bytes.
//!
//! Connections come from a bounded pool; each statement commits on its own with
//! `synchronous_commit = on`, so a store is acknowledged only once PostgreSQL has it on disk.
//! TLS is not supported (`sslmode=require` is refused): use a Unix socket or a trusted network.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use postgres::config::SslMode;
use postgres::{Client, Config, NoTls, Statement};
use uuid::Uuid;

use crate::store::{Backend, Store, StoreError, check_asset};
use crate::xml::{AssetBase, AssetMeta};

/// Default most simultaneously open connections of one [`PgStore`].
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Largest accepted pool size (PostgreSQL's default `max_connections` is 100).
pub const MAX_POOL_SIZE: usize = 1000;

/// Connection settings of a [`PgStore`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connection parameters for the `postgres` client.
    pub config: Config,
    /// Most simultaneously open connections.
    pub pool_size: usize,
    /// How long an operation waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl PgOptions {
    /// Default pool settings over `config`.
    pub fn new(config: Config) -> Self {
        PgOptions {
            config,
            pool_size: DEFAULT_POOL_SIZE,
            acquire_timeout: Duration::from_secs(30),
        }
    }

    /// Parses a location: a URL (`postgres://user:pass@host:port/db?pool_size=8`, libpq's
    /// parameters plus `pool_size`) or an OpenSimulator/Npgsql connection string
    /// (`Server=host;Port=5432;Database=db;User Id=u;Password=p;Maximum Pool Size=8;`).
    /// A host starting with `/` is a Unix socket directory.
    pub fn parse(location: &str) -> Result<Self, StoreError> {
        let s = location.trim();
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        let mut opts = if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            parse_url(s)?
        } else if Backend::of(s) == Backend::Postgres {
            parse_npgsql(s)?
        } else {
            return Err(StoreError::Config(
                "not a postgres:// URL nor a Server=...;Database=...; connection string".into(),
            ));
        };
        if opts.config.get_connect_timeout().is_none() {
            // Without one an unreachable host would hang the opening call for minutes.
            opts.config.connect_timeout(Duration::from_secs(10));
        }
        if matches!(opts.config.get_ssl_mode(), SslMode::Require) {
            return Err(StoreError::Config(
                "TLS (sslmode=require) is not supported".into(),
            ));
        }
        Ok(opts)
    }
}

fn config_err(msg: impl Into<String>) -> StoreError {
    StoreError::Config(msg.into())
}

fn parse_pool_size(v: &str) -> Result<usize, StoreError> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_POOL_SIZE).contains(&n) => Ok(n),
        _ => Err(config_err(format!(
            "pool size must be 1..={MAX_POOL_SIZE}, got {v:?}"
        ))),
    }
}

/// URL form: libpq's URL syntax; our own `pool_size` query parameter is taken out first
/// because the client refuses parameters it does not know.
fn parse_url(s: &str) -> Result<PgOptions, StoreError> {
    let (base, query) = s.split_once('?').unwrap_or((s, ""));
    let mut pool_size = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pool_size", v)) => pool_size = Some(parse_pool_size(v)?),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let config = Config::from_str(&url).map_err(|e| config_err(format!("bad URL: {e}")))?;
    let mut opts = PgOptions::new(config);
    if let Some(n) = pool_size {
        opts.pool_size = n;
    }
    Ok(opts)
}

/// Npgsql key, lower-cased with whitespace removed (`User Id` -> `userid`).
fn norm_key(k: &str) -> String {
    k.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Splits `key=value;key='quoted;value';...` (quotes `'` or `"`, doubled to escape).
fn npgsql_pairs(s: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(out);
        }
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| config_err(format!("connection string: no '=' in {rest:?}")))?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"');
        let (value, tail) = match quote {
            Some(q) => {
                let mut value = String::new();
                let mut chars = after[1..].char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c != q {
                        value.push(c);
                        continue;
                    }
                    if after[1 + i + 1..].starts_with(q) {
                        value.push(q);
                        chars.next();
                        continue;
                    }
                    end = Some(1 + i + 1);
                    break;
                }
                let end = end.ok_or_else(|| config_err("connection string: unclosed quote"))?;
                let tail = after[end..].trim_start();
                if !(tail.is_empty() || tail.starts_with(';')) {
                    return Err(config_err("connection string: text after a quoted value"));
                }
                (value, tail)
            }
            None => {
                let (v, t) = after.split_once(';').unwrap_or((after, ""));
                (v.trim().to_owned(), t)
            }
        };
        out.push((norm_key(key), value));
        rest = tail;
    }
}

fn parse_npgsql(s: &str) -> Result<PgOptions, StoreError> {
    let mut opts = PgOptions::new(Config::new());
    for (key, value) in npgsql_pairs(s)? {
        let c = &mut opts.config;
        match key.as_str() {
            "server" | "host" => {
                for h in value.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                    c.host(h);
                }
            }
            "port" => {
                let p = value
                    .parse::<u16>()
                    .map_err(|_| config_err(format!("bad port {value:?}")))?;
                c.port(p);
            }
            "database" | "db" => {
                c.dbname(&value);
            }
            "userid" | "user" | "username" | "uid" => {
                c.user(&value);
            }
            "password" | "pwd" | "psw" => {
                c.password(value.as_bytes());
            }
            "timeout" => {
                let t = value
                    .parse::<u64>()
                    .map_err(|_| config_err(format!("bad timeout {value:?}")))?;
                // Npgsql: seconds, 0 = wait forever.
                if t > 0 {
                    c.connect_timeout(Duration::from_secs(t));
                }
            }
            "applicationname" => {
                c.application_name(&value);
            }
            "sslmode" => match norm_key(&value).as_str() {
                "disable" => {
                    c.ssl_mode(SslMode::Disable);
                }
                "prefer" | "allow" => {
                    c.ssl_mode(SslMode::Prefer);
                }
                _ => return Err(config_err(format!("SSL Mode={value} is not supported"))),
            },
            "maxpoolsize" | "maximumpoolsize" => opts.pool_size = parse_pool_size(&value)?,
            // Npgsql pool and behaviour knobs that have no meaning for this client.
            "pooling"
            | "minpoolsize"
            | "minimumpoolsize"
            | "commandtimeout"
            | "connectionidlelifetime"
            | "connectionlifetime"
            | "enlist"
            | "keepalive"
            | "includeerrordetail"
            | "encoding"
            | "trustservercertificate" => {}
            _ => return Err(config_err(format!("unknown connection string key {key:?}"))),
        }
    }
    Ok(opts)
}

/// Table layout of OpenSimulator's PGSQL `AssetStore` at migration version 9.
const CREATE_ASSETS: &str = r#"
CREATE TABLE assets (
    "id" uuid NOT NULL PRIMARY KEY,
    "name" varchar(64) NOT NULL,
    "description" varchar(64) NOT NULL,
    "assetType" smallint NOT NULL,
    "local" boolean NOT NULL,
    "temporary" boolean NOT NULL,
    "data" bytea NOT NULL,
    "create_time" integer NULL,
    "access_time" integer NULL,
    "asset_flags" integer NOT NULL DEFAULT 0,
    "creatorid" varchar(128) NOT NULL DEFAULT ''
)"#;

/// The version OpenSimulator's migration runner must see to leave the table alone.
const OPENSIM_ASSETSTORE_VERSION: i32 = 9;

/// Key of the advisory lock that serialises schema set-up between servers.
const SCHEMA_LOCK: i64 = 0x6f73_6e5f_6173_7374; // "osn_asst"

/// Columns this store reads and writes, with the types it needs.
const REQUIRED_COLUMNS: [(&str, &str); 11] = [
    ("id", "uuid"),
    ("name", ""),
    ("description", ""),
    ("assetType", "smallint"),
    ("local", "boolean"),
    ("temporary", "boolean"),
    ("data", "bytea"),
    ("create_time", "integer"),
    ("access_time", "integer"),
    ("asset_flags", "integer"),
    ("creatorid", ""),
];

const META_COLS: &str =
    r#"name, description, "assetType", local, temporary, creatorid, asset_flags"#;

/// A pooled connection with its prepared statements.
struct Conn {
    client: Client,
    put: Statement,
    get: Statement,
    meta: Statement,
    data: Statement,
    exists: Statement,
    delete: Statement,
}

impl Conn {
    fn connect(config: &Config) -> Result<Self, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        // Whatever the server default, a commit returns only once it is flushed to disk.
        client.batch_execute("SET synchronous_commit = on")?;
        let put = client.prepare(
            r#"INSERT INTO assets (id, name, description, "assetType", local, temporary, data,
                                   create_time, access_time, asset_flags, creatorid)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)
               ON CONFLICT (id) DO NOTHING"#,
        )?;
        let get = client.prepare(&format!(
            "SELECT {META_COLS}, data FROM assets WHERE id = $1"
        ))?;
        let meta = client.prepare(&format!("SELECT {META_COLS} FROM assets WHERE id = $1"))?;
        let data = client.prepare("SELECT data FROM assets WHERE id = $1")?;
        let exists = client.prepare("SELECT id FROM assets WHERE id = ANY($1)")?;
        let delete = client.prepare("DELETE FROM assets WHERE id = $1")?;
        Ok(Conn {
            client,
            put,
            get,
            meta,
            data,
            exists,
            delete,
        })
    }
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections in existence, idle or lent out (or being opened).
    open: usize,
}

/// PostgreSQL store over OpenSimulator's `assets` table, with a bounded connection pool.
pub struct PgStore {
    opts: PgOptions,
    state: Mutex<PoolState>,
    freed: Condvar,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("hosts", &self.opts.config.get_hosts())
            .field("dbname", &self.opts.config.get_dbname())
            .field("pool_size", &self.opts.pool_size)
            .finish()
    }
}

fn lock(m: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    // The pool bookkeeping is updated in single steps, so it is valid even after a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection lent by the pool; returned (or discarded if broken) on drop.
struct Lease<'a> {
    store: &'a PgStore,
    conn: Option<Conn>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.store.release(c);
        }
    }
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Only `Drop` empties the option.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

fn now_secs() -> i32 {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // OpenSim's column is a 32-bit integer.
    i32::try_from(s).unwrap_or(i32::MAX)
}

fn meta_from_row(id: Uuid, r: &postgres::Row) -> Result<AssetMeta, StoreError> {
    let asset_type: i16 = r.try_get(2)?;
    let flags: i32 = r.try_get(6)?;
    Ok(AssetMeta {
        id,
        name: r.try_get(0)?,
        description: r.try_get(1)?,
        asset_type: i8::try_from(asset_type).map_err(|_| StoreError::Corrupt("assetType"))?,
        local: r.try_get(3)?,
        temporary: r.try_get(4)?,
        creator_id: r.try_get(5)?,
        // Same bits; the column is a signed 32-bit integer.
        flags: flags as u32,
    })
}

impl PgStore {
    /// Connects to the database named by `location` (see [`PgOptions::parse`]) and creates
    /// the `assets` table if it does not exist.
    pub fn open(location: &str) -> Result<Self, StoreError> {
        Self::open_with(PgOptions::parse(location)?)
    }

    /// Connects with explicit options and creates the `assets` table if needed.
    pub fn open_with(mut opts: PgOptions) -> Result<Self, StoreError> {
        opts.pool_size = opts.pool_size.clamp(1, MAX_POOL_SIZE);
        let mut client = opts.config.connect(NoTls)?;
        ensure_schema(&mut client)?;
        // The first pooled connection also proves the statements prepare against the table.
        let first = Conn::connect(&opts.config)?;
        drop(client);
        Ok(PgStore {
            opts,
            state: Mutex::new(PoolState {
                idle: vec![first],
                open: 1,
            }),
            freed: Condvar::new(),
        })
    }

    /// Most simultaneously open connections.
    pub fn pool_size(&self) -> usize {
        self.opts.pool_size
    }

    fn acquire(&self) -> Result<Lease<'_>, StoreError> {
        let deadline = Instant::now() + self.opts.acquire_timeout;
        let mut st = lock(&self.state);
        loop {
            if let Some(c) = st.idle.pop() {
                if c.client.is_closed() {
                    st.open -= 1;
                    continue;
                }
                return Ok(Lease {
                    store: self,
                    conn: Some(c),
                });
            }
            if st.open < self.opts.pool_size {
                st.open += 1;
                drop(st);
                // Connect outside the lock: it takes a network round trip or several.
                return match Conn::connect(&self.opts.config) {
                    Ok(c) => Ok(Lease {
                        store: self,
                        conn: Some(c),
                    }),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.freed.notify_one();
                        Err(e.into())
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::PoolTimeout(self.opts.acquire_timeout));
            }
            st = match self.freed.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn release(&self, c: Conn) {
        let broken = c.client.is_closed();
        {
            let mut st = lock(&self.state);
            if broken {
                st.open -= 1;
            } else {
                st.idle.push(c);
                drop(st);
                self.freed.notify_one();
                return;
            }
        }
        drop(c);
        self.freed.notify_one();
    }

    /// Runs `f` on a pooled connection; a call that failed because the connection had died
    /// (server restart, idle connection cut by a proxy) is retried once on a fresh one.
    /// Every statement here is idempotent; the one cost is that a store or delete whose
    /// commit went through just before the connection died reports `false` on the retry.
    fn run<T>(&self, f: impl Fn(&mut Conn) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut lease = self.acquire()?;
        match f(&mut lease) {
            Err(StoreError::Postgres(_)) if lease.client.is_closed() => {
                drop(lease);
                // Whatever killed this connection (a restart) most likely killed the idle
                // ones too: drop them rather than retry on another dead one.
                let stale = {
                    let mut st = lock(&self.state);
                    let stale = std::mem::take(&mut st.idle);
                    st.open -= stale.len();
                    stale
                };
                drop(stale);
                f(&mut *self.acquire()?)
            }
            r => r,
        }
    }
}

fn ensure_schema(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    // Two servers starting on an empty database must not both try to create the table.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('assets') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        tx.batch_execute(CREATE_ASSETS)?;
        // Record the table the way OpenSimulator's migration runner does, so that an
        // OpenSimulator pointed at this database does not try to create it again.
        let has_migrations: bool = tx
            .query_one("SELECT to_regclass('migrations') IS NOT NULL", &[])?
            .try_get(0)?;
        if !has_migrations {
            tx.batch_execute(
                "CREATE TABLE migrations (name varchar(100), version int);
                 INSERT INTO migrations (name, version) VALUES ('migrations', 1);",
            )?;
        }
        tx.execute(
            "INSERT INTO migrations (name, version) SELECT 'AssetStore', $1
             WHERE NOT EXISTS (SELECT 1 FROM migrations WHERE name = 'AssetStore')",
            &[&OPENSIM_ASSETSTORE_VERSION],
        )?;
    }
    let cols = tx.query(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'assets'::regclass AND attnum > 0 AND NOT attisdropped",
        &[],
    )?;
    for (name, ty) in REQUIRED_COLUMNS {
        let found = cols.iter().find_map(|r| {
            let n: &str = r.try_get(0).ok()?;
            (n == name)
                .then(|| r.try_get::<_, String>(1).ok())
                .flatten()
        });
        match found {
            Some(t) if ty.is_empty() || t == ty => {}
            other => {
                return Err(StoreError::Unsupported(format!(
                    "table assets: column {name} is {}, expected {}; \
                     bring it to OpenSimulator's AssetStore migration 9",
                    other.as_deref().unwrap_or("missing"),
                    if ty.is_empty() { "text" } else { ty }
                )));
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Ids per `= ANY($1)` query, so one huge exists call is not one huge statement.
const EXISTS_CHUNK: usize = 1000;

impl Store for PgStore {
    fn put(&self, mut a: AssetBase) -> Result<bool, StoreError> {
        check_asset(&mut a)?;
        let now = now_secs();
        // Same bits; the column is a signed 32-bit integer.
        let flags = a.flags as i32;
        let asset_type = i16::from(a.asset_type);
        self.run(|c| {
            let n = c.client.execute(
                &c.put,
                &[
                    &a.id,
                    &a.name,
                    &a.description,
                    &asset_type,
                    &a.local,
                    &a.temporary,
                    &a.data,
                    &now,
                    &flags,
                    &a.creator_id,
                ],
            )?;
            Ok(n == 1)
        })
    }

    fn get(&self, id: Uuid) -> Result<Option<AssetBase>, StoreError> {
        self.run(|c| {
            let Some(r) = c.client.query_opt(&c.get, &[&id])? else {
                return Ok(None);
            };
            let meta = meta_from_row(id, &r)?;
            Ok(Some(AssetBase::from_parts(meta, r.try_get(7)?)))
        })
    }

    fn meta(&self, id: Uuid) -> Result<Option<AssetMeta>, StoreError> {
        self.run(|c| {
            c.client
                .query_opt(&c.meta, &[&id])?
                .map(|r| meta_from_row(id, &r))
                .transpose()
        })
    }

    fn data(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(|c| {
            Ok(match c.client.query_opt(&c.data, &[&id])? {
                Some(r) => Some(r.try_get(0)?),
                None => None,
            })
        })
    }

    fn exists(&self, ids: &[Uuid]) -> Result<Vec<bool>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.run(|c| {
            let mut found = HashSet::new();
            for chunk in ids.chunks(EXISTS_CHUNK) {
                for r in c.client.query(&c.exists, &[&chunk])? {
                    found.insert(r.try_get::<_, Uuid>(0)?);
                }
            }
            Ok(found)
        })?;
        Ok(ids.iter().map(|id| found.contains(id)).collect())
    }

    fn delete(&self, id: Uuid) -> Result<bool, StoreError> {
        self.run(|c| Ok(c.client.execute(&c.delete, &[&id])? == 1))
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        let n: i64 = self.run(|c| {
            Ok(c.client
                .query_one("SELECT count(*) FROM assets", &[])?
                .try_get(0)?)
        })?;
        // Every row holds its own bytes: as many blobs as assets.
        let n = u64::try_from(n).unwrap_or(0);
        Ok((n, n))
    }

    fn ids(&self) -> Result<Vec<Uuid>, StoreError> {
        self.run(|c| {
            c.client
                .query("SELECT id FROM assets ORDER BY id", &[])?
                .iter()
                .map(|r| r.try_get(0).map_err(StoreError::from))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use postgres::config::Host;

    #[test]
    fn npgsql_form_like_opensim_ini() {
        let o = PgOptions::parse(
            "Server=db.example;Port=5433;Database=opensim;User Id=opensim;Password=s3;cr=t;",
        );
        // `cr=t` is an unknown key: refused, not ignored.
        assert!(matches!(o, Err(StoreError::Config(_))));
        let o = PgOptions::parse(
            "Server=db.example;Port=5433;Database=opensim;User Id=opensim;Password='s;3''x';Maximum Pool Size=4;Pooling=true",
        )
        .unwrap();
        let c = &o.config;
        assert_eq!(c.get_hosts(), &[Host::Tcp("db.example".into())]);
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_dbname(), Some("opensim"));
        assert_eq!(c.get_user(), Some("opensim"));
        assert_eq!(c.get_password(), Some(&b"s;3'x"[..]));
        assert_eq!(o.pool_size, 4);
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(10)));
    }

    #[test]
    fn npgsql_unix_socket_and_errors() {
        let o = PgOptions::parse("host=/run/pg; database = a ;username=u").unwrap();
        assert_eq!(
            o.config.get_hosts(),
            &[Host::Unix("/run/pg".into())],
            "a leading / is a socket directory"
        );
        for bad in [
            "Server=x;Port=99999",
            "Server=x;Password='open",
            "Server=x;Password='a'b",
            "Server=x;SSL Mode=Require",
            "Server=x;Maximum Pool Size=0",
            "Server=x;junk",
            "/var/lib/assets.db",
        ] {
            assert!(PgOptions::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_form_with_pool_size() {
        let o = PgOptions::parse(
            "postgresql://u:p%40ss@localhost:5444/assets?pool_size=3&application_name=osn",
        )
        .unwrap();
        assert_eq!(o.pool_size, 3);
        assert_eq!(o.config.get_user(), Some("u"));
        assert_eq!(o.config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(o.config.get_ports(), &[5444]);
        assert_eq!(o.config.get_application_name(), Some("osn"));
        let o = PgOptions::parse("postgres://u@%2Ftmp%2Fsock/db").unwrap();
        assert_eq!(o.config.get_hosts(), &[Host::Unix("/tmp/sock".into())]);
        assert_eq!(o.pool_size, DEFAULT_POOL_SIZE);
        assert!(PgOptions::parse("postgres://h/db?pool_size=x").is_err());
        assert!(PgOptions::parse("postgres://h/db?sslmode=require").is_err());
        assert!(PgOptions::parse("postgres://h/db?bogus=1").is_err());
    }
}
