//! The `Store` contract, run on every backend: store/get/metadata/data/exists/delete/ids
//! semantics, limits, concurrency and persistence across reopening.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::sync::Arc;

use common::{Backend, uuid_n};
use opensim_assets::store::{MAX_CREATOR_CHARS, open};
use opensim_assets::{AssetBase, Store, StoreError};
use uuid::Uuid;

fn id(n: u64) -> Uuid {
    Uuid::parse_str(&uuid_n(n)).unwrap()
}

fn asset(n: u64, data: &[u8]) -> AssetBase {
    AssetBase {
        id: id(n),
        name: format!("asset {n}"),
        description: "desc".into(),
        asset_type: 0,
        creator_id: "aaaaaaaa-bbbb-4ccc-8ddd-000000000001".into(),
        data: data.to_vec(),
        ..Default::default()
    }
}

/// An empty store on `b`, with what keeps it alive.
fn fresh(b: &Backend) -> (Box<dyn Store>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let loc = b.fresh_location(dir.path());
    (open(&loc).unwrap(), loc, dir)
}

fn round_trip_every_field(b: &Backend) {
    let (s, _, _d) = fresh(b);
    let a = AssetBase {
        id: id(1),
        name: "plywood ✓ 'quoted' \"double\"".into(),
        description: "".into(),
        asset_type: -2,
        local: true,
        temporary: true,
        creator_id: "11111111-1111-0000-0000-000100bba000;http://grid.example:8002/;A B".into(),
        // All four flag bits and the sign bit of the 32-bit column.
        flags: 0x8000_0007,
        data: (0..=255u8).cycle().take(70_000).collect(),
    };
    assert!(s.put(a.clone()).unwrap());
    assert_eq!(s.get(a.id).unwrap().as_ref(), Some(&a));
    assert_eq!(s.meta(a.id).unwrap(), Some(a.meta()));
    assert_eq!(s.data(a.id).unwrap().as_deref(), Some(&a.data[..]));
    for t in [i8::MIN, -1, 0, 49, i8::MAX] {
        let mut x = asset(0, b"");
        x.asset_type = t;
        x.id = Uuid::from_u128(0x1000 + t as u8 as u128);
        assert!(s.put(x.clone()).unwrap());
        assert_eq!(s.get(x.id).unwrap(), Some(x), "type {t}");
    }
    // Empty and 1 MiB bodies.
    let big = asset(2, &vec![0xa5; 1 << 20]);
    assert!(s.put(big.clone()).unwrap());
    assert_eq!(s.data(big.id).unwrap().unwrap().len(), 1 << 20);
    assert_eq!(s.get(id(404)).unwrap(), None);
    assert_eq!(s.meta(id(404)).unwrap(), None);
    assert_eq!(s.data(id(404)).unwrap(), None);
}

fn store_never_overwrites(b: &Backend) {
    let (s, _, _d) = fresh(b);
    assert!(s.put(asset(1, b"first")).unwrap());
    let mut second = asset(1, b"second");
    second.name = "other".into();
    assert!(!s.put(second).unwrap());
    let got = s.get(id(1)).unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), &got.data[..]),
        ("asset 1", &b"first"[..])
    );
}

fn exists_in_order(b: &Backend) {
    let (s, _, _d) = fresh(b);
    assert_eq!(s.exists(&[]).unwrap(), Vec::<bool>::new());
    for n in (0..2500).step_by(7) {
        s.put(asset(n, b"x")).unwrap();
    }
    // More ids than one query takes, with repeats, in a scrambled order.
    let ids: Vec<Uuid> = (0..2600u64).map(|i| id((i * 7919) % 2600)).collect();
    let want: Vec<bool> = (0..2600u64)
        .map(|i| {
            let n = (i * 7919) % 2600;
            n < 2500 && n % 7 == 0
        })
        .collect();
    assert_eq!(s.exists(&ids).unwrap(), want);
    assert_eq!(
        s.exists(&[id(7), id(8), id(7)]).unwrap(),
        [true, false, true]
    );
}

fn delete_semantics(b: &Backend) {
    let (s, _, _d) = fresh(b);
    s.put(asset(1, b"same")).unwrap();
    s.put(asset(2, b"same")).unwrap();
    assert!(s.delete(id(1)).unwrap());
    assert!(!s.delete(id(1)).unwrap());
    assert!(!s.delete(id(99)).unwrap());
    assert_eq!(s.get(id(1)).unwrap(), None);
    assert_eq!(s.exists(&[id(1), id(2)]).unwrap(), [false, true]);
    // The other id with identical bytes is untouched.
    assert_eq!(s.data(id(2)).unwrap().as_deref(), Some(&b"same"[..]));
    assert_eq!(s.counts().unwrap(), (1, 1));
    // A deleted id can be stored again.
    assert!(s.put(asset(1, b"again")).unwrap());
    assert_eq!(s.data(id(1)).unwrap().as_deref(), Some(&b"again"[..]));
}

fn ids_sorted_and_counts(b: &Backend) {
    let (s, _, _d) = fresh(b);
    let mut want: Vec<Uuid> = [5u128, 1, u128::MAX, 1 << 127, 300]
        .iter()
        .map(|&n| Uuid::from_u128(n))
        .collect();
    for (i, u) in want.iter().enumerate() {
        let mut a = asset(i as u64, format!("{i}").as_bytes());
        a.id = *u;
        s.put(a).unwrap();
    }
    want.sort();
    assert_eq!(s.ids().unwrap(), want);
    assert_eq!(s.counts().unwrap(), (5, 5));
}

fn names_cut_and_creator_limit(b: &Backend) {
    let (s, _, _d) = fresh(b);
    let mut a = asset(1, b"n");
    a.name = "é".repeat(100);
    a.description = "d".repeat(65);
    s.put(a).unwrap();
    let m = s.meta(id(1)).unwrap().unwrap();
    assert_eq!((m.name, m.description), ("é".repeat(64), "d".repeat(64)));
    let mut a = asset(2, b"c");
    a.creator_id = "é".repeat(MAX_CREATOR_CHARS);
    assert!(s.put(a.clone()).unwrap());
    assert_eq!(s.meta(id(2)).unwrap().unwrap().creator_id, a.creator_id);
    a.id = id(3);
    a.creator_id.push('x');
    assert!(matches!(s.put(a), Err(StoreError::Invalid(_))));
    assert_eq!(s.get(id(3)).unwrap(), None);
}

fn concurrent_same_id_one_winner(b: &Backend) {
    let (s, _, _d) = fresh(b);
    let s: Arc<dyn Store> = s.into();
    for round in 0..10u64 {
        let wins: usize = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8u8)
                .map(|t| {
                    let s = s.clone();
                    sc.spawn(move || s.put(asset(round, &[t])).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap() as usize).sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
    assert_eq!(s.counts().unwrap().0, 10);
}

fn survives_reopen(b: &Backend) {
    let (s, loc, _d) = fresh(b);
    s.put(asset(1, b"kept")).unwrap();
    drop(s);
    let s = open(&loc).unwrap();
    assert_eq!(s.data(id(1)).unwrap().as_deref(), Some(&b"kept"[..]));
    assert!(!s.put(asset(1, b"new")).unwrap());
}

on_both_backends!(
    round_trip_every_field,
    store_never_overwrites,
    exists_in_order,
    delete_semantics,
    ids_sorted_and_counts,
    names_cut_and_creator_limit,
    concurrent_same_id_one_winner,
    survives_reopen,
);
