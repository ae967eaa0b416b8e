//! A throw-away PostgreSQL server for tests: `initdb` in a temporary directory, `postgres`
//! listening only on a Unix socket inside it (no port to collide on), readiness by polling a
//! connection, one fresh database per caller, fast shutdown on drop.
//!
//! Binaries are looked up in `$PG_BIN`, then Debian's `/usr/lib/postgresql/<newest>/bin`,
//! then `PATH`. Missing binaries: a skip notice, or a panic under `CI=true`. As root the
//! server runs as the `postgres` user (else `nobody`) through `setpriv`, since PostgreSQL
//! refuses to run as root.
#![allow(clippy::unwrap_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A running PostgreSQL server, stopped when the last handle is dropped.
pub struct PgCluster {
    child: Mutex<Child>,
    /// Directory holding the Unix socket.
    pub socket_dir: PathBuf,
    next_db: AtomicU32,
    /// Database holding one schema per [`PgCluster::fresh_url`] caller.
    shared_db: String,
    dir: tempfile::TempDir,
}

static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());

fn find_bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").exists() && d.join("postgres").exists())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The unprivileged account the server runs as when we are root.
fn service_user() -> &'static str {
    let has_postgres = Command::new("id")
        .arg("postgres")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_postgres { "postgres" } else { "nobody" }
}

fn command(bin: &Path, user: Option<&str>) -> Command {
    match user {
        Some(u) => {
            // setpriv execs in place (runuser would fork), so the child we signal is the server.
            let mut c = Command::new("setpriv");
            let gid = Command::new("id").args(["-g", u]).output().unwrap().stdout;
            let gid = String::from_utf8(gid).unwrap();
            c.arg(format!("--reuid={u}"))
                .arg(format!("--regid={}", gid.trim()))
                .args(["--clear-groups", "--"])
                .arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

impl PgCluster {
    /// The shared server of this test binary, started if no test holds it; `None` (with a
    /// notice) when PostgreSQL is not installed, outside CI.
    pub fn shared() -> Option<Arc<PgCluster>> {
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.upgrade() {
            return Some(c);
        }
        let c = Arc::new(Self::start()?);
        *slot = Arc::downgrade(&c);
        Some(c)
    }

    /// Starts a new server.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = find_bin_dir() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL binaries not found under CI=true (apt-get install postgresql)");
            }
            eprintln!(
                "skipping PostgreSQL tests: initdb/postgres not found (apt-get install postgresql, or set PG_BIN)"
            );
            return None;
        };
        let user = is_root().then(service_user);
        let dir = tempfile::Builder::new().prefix("osn-pg").tempdir().unwrap();
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("sock");
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(&socket_dir).unwrap();
        if let Some(u) = user {
            // The service account must reach and own its directories.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let st = Command::new("chown")
                .arg(u)
                .arg(&data)
                .arg(&socket_dir)
                .status()
                .unwrap();
            assert!(st.success(), "chown to {u} failed");
        }
        let out = command(&bin.join("initdb"), user)
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = command(&bin.join("postgres"), user)
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&socket_dir)
            // No TCP listener at all: nothing to collide with other tests or services.
            .args(["-c", "listen_addresses=", "-c", "max_connections=200"])
            // Tests never crash the database server itself, so its fsyncs buy nothing here
            // and cost seconds on slow disks; the store still asks for synchronous commits.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let cluster = PgCluster {
            child: Mutex::new(child),
            socket_dir,
            next_db: AtomicU32::new(0),
            shared_db: "assets_tests".into(),
            dir,
        };
        cluster.wait_ready();
        cluster
            .admin()
            .unwrap()
            .batch_execute("CREATE DATABASE assets_tests")
            .unwrap();
        Some(cluster)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.admin() {
                Ok(_) => return,
                Err(e) => {
                    if let Ok(Some(st)) = self.child.lock().unwrap().try_wait() {
                        panic!(
                            "postgres exited ({st}) before accepting connections:\n{}",
                            self.log()
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "postgres not ready after 60 s: {e}\n{}",
                        self.log()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A superuser connection to the `postgres` database.
    pub fn admin(&self) -> Result<postgres::Client, postgres::Error> {
        self.client("postgres")
    }

    /// A superuser connection to `db`.
    pub fn client(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(&self.socket_dir)
            .user("postgres")
            .dbname(db)
            .connect(postgres::NoTls)
    }

    /// Creates an empty database and returns its name.
    pub fn create_database(&self) -> String {
        let name = format!(
            "assets_{}_{}",
            std::process::id(),
            self.next_db.fetch_add(1, Ordering::Relaxed)
        );
        self.admin()
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        name
    }

    /// `postgres://` URL of database `db` over the Unix socket.
    pub fn url(&self, db: &str) -> String {
        let sock = self.socket_dir.to_str().unwrap().replace('/', "%2F");
        format!("postgresql://postgres@{sock}/{db}")
    }

    /// OpenSimulator-style connection string of database `db`.
    pub fn npgsql(&self, db: &str) -> String {
        format!(
            "Server={};Port=5432;Database={db};User Id=postgres;Password=unused;",
            self.socket_dir.display()
        )
    }

    /// URL of a new, empty schema (cheaper than a database: no file copy) in the shared
    /// test database; the store sees it as its whole world through `search_path`.
    pub fn fresh_url(&self) -> String {
        let schema = format!("s{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        self.client(&self.shared_db)
            .unwrap()
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        format!(
            "{}?options=-csearch_path%3D{schema}",
            self.url(&self.shared_db)
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        // SIGINT is PostgreSQL's fast shutdown: sessions are ended, the data dir left clean.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
