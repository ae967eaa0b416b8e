//! On-disk cache behaviour: restarts, corruption, eviction, partial entries, concurrency.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use opensim_textures::{CacheError, TextureCache};
use uuid::Uuid;

const MB: u64 = 1 << 20;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x8955_6747_24cb_43ed_920b_0000_0000_0000 | n)
}

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn entries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let whole = body(5000, 1);
    {
        let cache = TextureCache::open(dir.path(), MB).unwrap();
        cache.put(id(1), &whole, Some(5000)).unwrap();
        cache.put(id(2), &whole[..600], Some(5000)).unwrap();
    }
    let cache = TextureCache::open(dir.path(), MB).unwrap();
    assert_eq!(cache.len(), 2);
    let a = cache.get(id(1)).unwrap().unwrap();
    assert_eq!(a.data, whole);
    assert!(a.is_complete());
    let b = cache.get(id(2)).unwrap().unwrap();
    assert_eq!(b.data, &whole[..600]);
    assert_eq!(b.total_size, Some(5000));
    assert!(!b.is_complete());
    assert_eq!(cache.get(id(3)).unwrap(), None);
}

#[test]
fn corrupt_entries_are_removed_and_missed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TextureCache::open(dir.path(), MB).unwrap();
    let data = body(3000, 7);
    let path = dir.path().join(format!("{}.j2c", id(1)));

    // A flipped byte anywhere in the file (header or data) is detected.
    for at in [0usize, 5, 12, 20, 26, 28, 1000, 3027] {
        cache.put(id(1), &data, None).unwrap();
        let mut raw = std::fs::read(&path).unwrap();
        raw[at] ^= 0x01;
        std::fs::write(&path, raw).unwrap();
        assert_eq!(cache.get(id(1)).unwrap(), None, "flip at {at}");
        assert!(!path.exists(), "corrupt file at {at} was not deleted");
        assert!(!cache.contains(id(1)));
    }
    // Truncation too, including to an empty file.
    for len in [0u64, 10, 28, 1500, 3027] {
        cache.put(id(1), &data, None).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        assert_eq!(cache.get(id(1)).unwrap(), None, "truncated to {len}");
    }
    assert_eq!(cache.corrupt_entries_removed(), 13);
    // Extra bytes appended are corruption as well.
    cache.put(id(1), &data, None).unwrap();
    let mut raw = std::fs::read(&path).unwrap();
    raw.push(0);
    std::fs::write(&path, raw).unwrap();
    assert_eq!(cache.get(id(1)).unwrap(), None);
    // After a refetch the entry is good again.
    cache.put(id(1), &data, None).unwrap();
    assert_eq!(cache.get(id(1)).unwrap().unwrap().data, data);
}

#[test]
fn least_recently_used_entries_are_evicted_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let entry = 10_000usize;
    // Room for three entries with their 28-byte headers, not four.
    let limit = 3 * (entry as u64 + 28) + 100;
    let cache = TextureCache::open(dir.path(), limit).unwrap();
    for n in 1..=3 {
        cache.put(id(n), &body(entry, n as u8), None).unwrap();
    }
    // Touch 1 so that 2 becomes the least recently used.
    assert!(cache.get(id(1)).unwrap().is_some());
    cache.put(id(4), &body(entry, 4), None).unwrap();
    assert!(cache.total_bytes() <= limit);
    assert_eq!(
        cache.get(id(2)).unwrap(),
        None,
        "2 was the least recently used"
    );
    for n in [1, 3, 4] {
        assert_eq!(
            cache.get(id(n)).unwrap().unwrap().data,
            body(entry, n as u8)
        );
    }
    // The files on disk agree with the index.
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 3);

    // Recency survives a restart (through modification times): age every file, read 4 and 1,
    // reopen with room for two, and the one not read since (3) goes.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for n in [1, 3, 4] {
        let path = dir.path().join(format!("{}.j2c", id(n)));
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    for n in [4, 1] {
        assert!(cache.get(id(n)).unwrap().is_some());
    }
    drop(cache);
    let cache = TextureCache::open(dir.path(), 2 * (entry as u64 + 28)).unwrap();
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.get(id(3)).unwrap(), None);
    assert!(cache.get(id(1)).unwrap().is_some());

    // An entry larger than the whole cache is refused.
    let err = cache.put(id(9), &body(3 * entry, 9), None).unwrap_err();
    assert!(matches!(err, CacheError::TooLarge { .. }));
}

#[test]
fn partial_entries_are_extended() {
    let dir = tempfile::tempdir().unwrap();
    let cache = TextureCache::open(dir.path(), MB).unwrap();
    let whole = body(4000, 3);
    assert_eq!(
        cache.extend(id(1), 0, &whole[..600], Some(4000)).unwrap(),
        600
    );
    // Overlapping and gapless continuations.
    assert_eq!(
        cache.extend(id(1), 500, &whole[500..1600], None).unwrap(),
        1600
    );
    // Already held: nothing changes.
    assert_eq!(
        cache.extend(id(1), 100, &whole[100..200], None).unwrap(),
        1600
    );
    let err = cache.extend(id(1), 1700, &whole[1700..], None).unwrap_err();
    assert!(matches!(
        err,
        CacheError::NotContiguous {
            offset: 1700,
            have: 1600
        }
    ));
    let err = cache
        .extend(id(1), 1600, &whole[1600..], Some(9999))
        .unwrap_err();
    assert!(matches!(err, CacheError::TotalMismatch { .. }));
    assert_eq!(
        cache.extend(id(1), 1600, &whole[1600..], None).unwrap(),
        4000
    );
    let got = cache.get(id(1)).unwrap().unwrap();
    assert_eq!(got.data, whole);
    assert!(got.is_complete());
    let err = cache.put(id(2), &whole, Some(10)).unwrap_err();
    assert!(matches!(err, CacheError::LongerThanTotal { .. }));
    let err = cache.extend(id(3), 5, b"x", None).unwrap_err();
    assert!(matches!(
        err,
        CacheError::NotContiguous { offset: 5, have: 0 }
    ));
}

#[test]
fn concurrent_writers_of_one_id_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(TextureCache::open(dir.path(), 64 * MB).unwrap());
    let versions: Vec<Vec<u8>> = (0..4u8)
        .map(|s| body(20_000 + usize::from(s) * 1000, s))
        .collect();
    let versions = Arc::new(versions);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let cache = Arc::clone(&cache);
            let versions = Arc::clone(&versions);
            std::thread::spawn(move || {
                for round in 0..25 {
                    let v = &versions[(t + round) % versions.len()];
                    cache.put(id(1), v, Some(v.len() as u64)).unwrap();
                    // Readers in between always see one whole version.
                    let got = cache.get(id(1)).unwrap().unwrap();
                    assert!(versions.contains(&got.data));
                    assert!(got.is_complete());
                    // Progressive writers of another id interleave with them.
                    let p = &versions[0];
                    let have = cache
                        .extend(id(2), 0, &p[..1000], Some(p.len() as u64))
                        .unwrap();
                    assert!(have >= 1000);
                    cache.extend(id(2), 1000, &p[1000..], None).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(versions.contains(&cache.get(id(1)).unwrap().unwrap().data));
    assert_eq!(cache.get(id(2)).unwrap().unwrap().data, versions[0]);
    assert_eq!(cache.corrupt_entries_removed(), 0);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn leftover_temporary_files_are_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!(".{}.1.2.tmp", id(1))), b"half").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not ours").unwrap();
    let cache = TextureCache::open(dir.path(), MB).unwrap();
    assert!(cache.is_empty());
    assert!(!dir.path().join(format!(".{}.1.2.tmp", id(1))).exists());
    assert!(
        dir.path().join("notes.txt").exists(),
        "foreign files are left alone"
    );
}
