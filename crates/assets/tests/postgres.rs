//! PostgreSQL-only behaviour: OpenSimulator's table layout both ways, refusal of an older
//! layout, the OpenSimulator connection-string form, the pool bound and recovery from
//! connections the server dropped.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::pg::PgCluster;
use opensim_assets::{AssetBase, PgOptions, PgStore, Store, StoreError};
use uuid::Uuid;

fn cluster() -> Option<Arc<PgCluster>> {
    PgCluster::shared()
}

fn asset(n: u128, data: &[u8]) -> AssetBase {
    AssetBase {
        id: Uuid::from_u128(n),
        name: format!("a{n}"),
        asset_type: 7,
        creator_id: "11111111-1111-0000-0000-000100bba000".into(),
        data: data.to_vec(),
        ..Default::default()
    }
}

#[test]
fn shares_opensim_table_both_ways() {
    let Some(c) = cluster() else { return };
    let db = c.create_database();
    let mut sql = c.client(&db).unwrap();
    // Rows as OpenSimulator's PGSQL store writes them, in a table it created (migration 9).
    sql.batch_execute(
        r#"CREATE TABLE migrations (name varchar(100), version int);
           INSERT INTO migrations VALUES ('migrations', 1), ('AssetStore', 9);
           CREATE TABLE assets ("id" uuid NOT NULL PRIMARY KEY, "name" varchar(64) NOT NULL,
             "description" varchar(64) NOT NULL, "assetType" smallint NOT NULL,
             "local" boolean NOT NULL, "temporary" boolean NOT NULL, "data" bytea NOT NULL,
             "create_time" int NULL, "access_time" int NULL,
             "asset_flags" INTEGER NOT NULL DEFAULT 0, "creatorid" varchar(128) NOT NULL DEFAULT '');
           INSERT INTO assets VALUES ('89556747-24cb-43ed-920b-47caed15465f', 'plywood', '', 0,
             false, false, '\x00ff4f', 1700000000, 1700000000, 1, 'c');"#,
    )
    .unwrap();
    let store = PgStore::open(&c.url(&db)).unwrap();
    let id = Uuid::parse_str("89556747-24cb-43ed-920b-47caed15465f").unwrap();
    let a = store.get(id).unwrap().unwrap();
    assert_eq!(
        (
            a.name.as_str(),
            a.asset_type,
            a.flags,
            a.creator_id.as_str(),
            &a.data[..]
        ),
        ("plywood", 0, 1, "c", &[0u8, 0xff, 0x4f][..])
    );
    // What we store, OpenSimulator's SELECT * finds with its column names and times set.
    assert!(store.put(asset(5, b"ours")).unwrap());
    let row = sql
        .query_one(
            r#"SELECT "assetType", data, create_time, access_time, creatorid FROM assets WHERE id = $1"#,
            &[&Uuid::from_u128(5)],
        )
        .unwrap();
    let (t, data, ct, at, cr): (i16, Vec<u8>, i32, i32, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (t, &data[..], cr.as_str()),
        (7, &b"ours"[..], asset(5, b"").creator_id.as_str())
    );
    assert!(ct > 1_700_000_000 && at == ct, "{ct} {at}");
    let versions: i64 = sql
        .query_one(
            "SELECT count(*) FROM migrations WHERE name = 'AssetStore'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(versions, 1, "an existing migrations record is left alone");
}

#[test]
fn new_table_is_recorded_for_opensim() {
    let Some(c) = cluster() else { return };
    let db = c.create_database();
    PgStore::open(&c.url(&db)).unwrap();
    // Opening again (a second server) finds the table and changes nothing.
    PgStore::open(&c.url(&db)).unwrap();
    let rows = c
        .client(&db)
        .unwrap()
        .query("SELECT name, version FROM migrations ORDER BY name", &[])
        .unwrap();
    let got: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [("AssetStore".to_owned(), 9), ("migrations".to_owned(), 1)]
    );
}

#[test]
fn older_layout_is_refused_with_a_reason() {
    let Some(c) = cluster() else { return };
    let db = c.create_database();
    // OpenSim's AssetStore migration 3: text ids, no flags or creator columns.
    c.client(&db)
        .unwrap()
        .batch_execute(
            r#"CREATE TABLE assets ("id" varchar(36) NOT NULL PRIMARY KEY, "name" varchar(64) NOT NULL,
                 "description" varchar(64) NOT NULL, "assetType" smallint NOT NULL,
                 "local" boolean NOT NULL, "temporary" boolean NOT NULL, "data" bytea NOT NULL,
                 "create_time" integer default 0, "access_time" integer default 0)"#,
        )
        .unwrap();
    match PgStore::open(&c.url(&db)) {
        Err(StoreError::Unsupported(msg)) => assert!(msg.contains("column id"), "{msg}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn opensim_connection_string_and_backend_choice() {
    let Some(c) = cluster() else { return };
    let db = c.create_database();
    let cs = c.npgsql(&db);
    assert_eq!(
        opensim_assets::Backend::of(&cs),
        opensim_assets::Backend::Postgres
    );
    let store = opensim_assets::store::open(&cs).unwrap();
    assert!(store.put(asset(1, b"x")).unwrap());
    let url = format!("{}?pool_size=2", c.url(&db));
    let store = opensim_assets::store::open(&url).unwrap();
    assert_eq!(store.data(Uuid::from_u128(1)).unwrap().unwrap(), b"x");
    // Nobody listening on that socket directory: a typed error, not a hang or a panic.
    let gone = format!(
        "Server={}/nowhere;Database=x;User Id=u;",
        c.socket_dir.display()
    );
    assert!(matches!(
        opensim_assets::store::open(&gone),
        Err(StoreError::Postgres(_))
    ));
}

fn backends_of(c: &PgCluster, db: &str) -> i64 {
    c.admin()
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .unwrap()
        .get(0)
}

#[test]
fn pool_is_bounded_and_survives_dropped_connections() {
    let Some(c) = cluster() else { return };
    let db = c.create_database();
    let mut opts = PgOptions::parse(&c.url(&db)).unwrap();
    opts.pool_size = 3;
    let store = Arc::new(PgStore::open_with(opts).unwrap());
    let peak = std::sync::atomic::AtomicI64::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let watcher = sc.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(backends_of(&c, &db), std::sync::atomic::Ordering::Relaxed);
            }
        });
        let workers: Vec<_> = (0..12u128)
            .map(|t| {
                let store = store.clone();
                sc.spawn(move || {
                    for i in 0..40u128 {
                        let n = t << 32 | i;
                        assert!(store.put(asset(n, &n.to_le_bytes())).unwrap());
                        assert_eq!(
                            store.data(Uuid::from_u128(n)).unwrap().unwrap(),
                            n.to_le_bytes()
                        );
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap();
    });
    let peak = peak.into_inner();
    assert!((1..=3).contains(&peak), "peak {peak} connections");
    assert_eq!(store.counts().unwrap().0, 12 * 40);

    // The server ends every session (as a restart or an idle cut would): the next calls
    // notice on their own connection, reconnect, and succeed.
    c.admin()
        .unwrap()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&db],
        )
        .unwrap();
    for i in 0..6u128 {
        assert!(store.put(asset(1 << 100 | i, b"after")).unwrap());
        assert!(store.exists(&[Uuid::from_u128(1 << 100 | i)]).unwrap()[0]);
    }
}
