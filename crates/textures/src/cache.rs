//! An on-disk texture cache keyed by asset UUID that survives restarts.
//!
//! Each entry is one file, `<uuid>.j2c` in the cache folder, holding a small header and a
//! prefix of the codestream (the whole of it once fully fetched):
//!
//! | bytes | field |
//! |-------|-------|
//! | 4 | magic `OSTX` |
//! | 1 | format version (1) |
//! | 1 | flags: bit 0 = total size known |
//! | 2 | reserved, 0 |
//! | 8 | total size of the asset (big-endian; 0 when unknown) |
//! | 8 | length of the stored prefix |
//! | 4 | CRC-32 of the 24 bytes above followed by the prefix |
//!
//! Files are written to a temporary name in the same folder and renamed into place, so a
//! reader sees the old entry or the new one, never a mix. An entry that fails any check
//! (short file, bad magic, bad checksum) is deleted and reported as a miss: the caller fetches
//! again. The total size of the folder is kept under a limit by evicting the least recently
//! used entries; recency survives restarts through the files' modification times.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::SystemTime;

use uuid::Uuid;

const MAGIC: [u8; 4] = *b"OSTX";
const VERSION: u8 = 1;
const FLAG_TOTAL_KNOWN: u8 = 1;
/// Header length: magic, version, flags, reserved, total, prefix length, checksum.
const HEADER_LEN: usize = 28;
const EXTENSION: &str = "j2c";
/// Writers of one asset id serialize on one of these (chosen by the id's hash).
const LOCK_STRIPES: usize = 64;

/// Why a cache operation failed. A corrupt entry is not an error: it is removed and reported
/// as a miss.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The file system refused an operation.
    #[error("texture cache I/O: {0}")]
    Io(#[from] io::Error),
    /// The entry alone is larger than the cache limit; it was not stored.
    #[error("entry of {size} bytes exceeds the cache limit of {limit} bytes")]
    TooLarge {
        /// Size of the entry on disk.
        size: u64,
        /// The cache limit.
        limit: u64,
    },
    /// An extension does not start within the cached prefix (API misuse).
    #[error("data at offset {offset} does not continue the cached prefix of {have} bytes")]
    NotContiguous {
        /// Offset the caller gave.
        offset: u64,
        /// Length of the cached prefix.
        have: u64,
    },
    /// The prefix would be longer than the stated total size (API misuse).
    #[error("prefix of {prefix} bytes is longer than the total size {total}")]
    LongerThanTotal {
        /// Length of the prefix.
        prefix: u64,
        /// The stated total.
        total: u64,
    },
    /// A total size was given that differs from the one already cached for this asset.
    #[error("total size {given} differs from the cached total {cached}")]
    TotalMismatch {
        /// The total size given now.
        given: u64,
        /// The total size stored before.
        cached: u64,
    },
}

/// A cached codestream, or a prefix of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTexture {
    /// The stored bytes, from the start of the codestream.
    pub data: Vec<u8>,
    /// Total size of the asset, when known.
    pub total_size: Option<u64>,
}

impl CachedTexture {
    /// Whether the whole asset is cached.
    pub fn is_complete(&self) -> bool {
        self.total_size == Some(self.data.len() as u64)
    }
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    bytes: u64,
    tick: u64,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<Uuid, Meta>,
    by_recency: BTreeSet<(u64, Uuid)>,
    total: u64,
    clock: u64,
    corrupt_removed: u64,
}

impl Index {
    fn touch(&mut self, id: Uuid, bytes: u64) {
        self.clock += 1;
        let tick = self.clock;
        if let Some(old) = self.entries.insert(id, Meta { bytes, tick }) {
            self.by_recency.remove(&(old.tick, id));
            self.total -= old.bytes;
        }
        self.by_recency.insert((tick, id));
        self.total += bytes;
    }

    fn forget(&mut self, id: Uuid) {
        if let Some(old) = self.entries.remove(&id) {
            self.by_recency.remove(&(old.tick, id));
            self.total -= old.bytes;
        }
    }
}

/// A thread-safe on-disk texture cache (see the module documentation for the format).
#[derive(Debug)]
pub struct TextureCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    stripes: Vec<Mutex<()>>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every update is a few field
    // writes), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TextureCache {
    /// Opens (creating if needed) the cache in `dir`, limited to `max_bytes` on disk.
    /// Existing entries are indexed by size and modification time; leftover temporary files
    /// from an interrupted write are deleted.
    pub fn open(dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, CacheError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let mut found: Vec<(SystemTime, Uuid, u64)> = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(id) = name
                .strip_suffix(".j2c")
                .and_then(|stem| Uuid::parse_str(stem).ok())
            else {
                continue;
            };
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((mtime, id, meta.len()));
        }
        found.sort();
        let mut index = Index::default();
        for (_, id, bytes) in found {
            index.touch(id, bytes);
        }
        let cache = TextureCache {
            dir,
            max_bytes,
            index: Mutex::new(index),
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        };
        cache.evict(None)?;
        Ok(cache)
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes used on disk by the indexed entries.
    pub fn total_bytes(&self) -> u64 {
        lock(&self.index).total
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        lock(&self.index).entries.len()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an entry for `id` is indexed (without reading or checking it).
    pub fn contains(&self, id: Uuid) -> bool {
        lock(&self.index).entries.contains_key(&id)
    }

    /// How many corrupt entries were found and deleted since opening.
    pub fn corrupt_entries_removed(&self) -> u64 {
        lock(&self.index).corrupt_removed
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.{EXTENSION}"))
    }

    fn stripe(&self, id: Uuid) -> MutexGuard<'_, ()> {
        lock(&self.stripes[stripe_of(id)])
    }

    /// Reads the entry for `id`. A missing or corrupt entry is a miss (`Ok(None)`); a corrupt
    /// one is deleted first.
    pub fn get(&self, id: Uuid) -> Result<Option<CachedTexture>, CacheError> {
        let _guard = self.stripe(id);
        self.get_locked(id)
    }

    fn get_locked(&self, id: Uuid) -> Result<Option<CachedTexture>, CacheError> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                lock(&self.index).forget(id);
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        match decode_entry(bytes) {
            Some(tex) => {
                let size = (HEADER_LEN + tex.data.len()) as u64;
                // Recency must survive a restart: the index is rebuilt from modification times.
                if let Ok(f) = File::options().write(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                lock(&self.index).touch(id, size);
                Ok(Some(tex))
            }
            None => {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
                let mut index = lock(&self.index);
                index.forget(id);
                index.corrupt_removed += 1;
                Ok(None)
            }
        }
    }

    /// Stores `data` (the codestream from its first byte, whole or a prefix) for `id`,
    /// replacing any previous entry.
    pub fn put(&self, id: Uuid, data: &[u8], total_size: Option<u64>) -> Result<(), CacheError> {
        let _guard = self.stripe(id);
        self.write_locked(id, &[data], total_size)
    }

    /// Adds bytes that start at `offset` of the codestream to the cached prefix (for a
    /// progressive fetch). `offset` must not be beyond the cached prefix; bytes already held
    /// are kept. Returns the length of the cached prefix afterwards.
    pub fn extend(
        &self,
        id: Uuid,
        offset: u64,
        more: &[u8],
        total_size: Option<u64>,
    ) -> Result<u64, CacheError> {
        let _guard = self.stripe(id);
        let current = self.get_locked(id)?;
        let (have, cached_total) = current
            .as_ref()
            .map_or((0, None), |c| (c.data.len() as u64, c.total_size));
        if offset > have {
            return Err(CacheError::NotContiguous { offset, have });
        }
        if let (Some(given), Some(cached)) = (total_size, cached_total)
            && given != cached
        {
            return Err(CacheError::TotalMismatch { given, cached });
        }
        let total = total_size.or(cached_total);
        let end = offset + more.len() as u64;
        if end <= have {
            return Ok(have);
        }
        let old = current.map(|c| c.data).unwrap_or_default();
        // `offset <= have`, which is the length of `old`.
        let keep = &old[..offset as usize];
        self.write_locked(id, &[keep, more], total)?;
        Ok(end)
    }

    /// Deletes the entry for `id`, if any.
    pub fn remove(&self, id: Uuid) -> Result<(), CacheError> {
        let _guard = self.stripe(id);
        match fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        lock(&self.index).forget(id);
        Ok(())
    }

    fn write_locked(
        &self,
        id: Uuid,
        parts: &[&[u8]],
        total: Option<u64>,
    ) -> Result<(), CacheError> {
        let prefix: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if let Some(total) = total
            && prefix > total
        {
            return Err(CacheError::LongerThanTotal { prefix, total });
        }
        let size = HEADER_LEN as u64 + prefix;
        if size > self.max_bytes {
            return Err(CacheError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        let header = encode_header(total, prefix, parts);
        let tmp = self.dir.join(format!(
            ".{id}.{}.{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&header)?;
            for p in parts {
                f.write_all(p)?;
            }
            f.flush()?;
            drop(f);
            fs::rename(&tmp, self.path(id))
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        lock(&self.index).touch(id, size);
        self.evict(Some(id))
    }

    /// Deletes least recently used entries (never `keep`) until the total fits the limit.
    /// An entry whose writer lock is busy is passed over rather than waited for, since the
    /// caller may hold another writer lock (waiting could deadlock).
    fn evict(&self, keep: Option<Uuid>) -> Result<(), CacheError> {
        let mut busy: Vec<Uuid> = Vec::new();
        loop {
            let victim = {
                let index = lock(&self.index);
                if index.total <= self.max_bytes {
                    return Ok(());
                }
                index
                    .by_recency
                    .iter()
                    .map(|&(_, id)| id)
                    .find(|id| Some(*id) != keep && !busy.contains(id))
            };
            let Some(victim) = victim else {
                return Ok(());
            };
            let _guard = match self.stripes[stripe_of(victim)].try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    busy.push(victim);
                    continue;
                }
            };
            match fs::remove_file(self.path(victim)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            lock(&self.index).forget(victim);
        }
    }
}

fn stripe_of(id: Uuid) -> usize {
    let (hi, lo) = id.as_u64_pair();
    ((hi ^ lo) % LOCK_STRIPES as u64) as usize
}

fn encode_header(total: Option<u64>, prefix: u64, parts: &[&[u8]]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5] = if total.is_some() { FLAG_TOTAL_KNOWN } else { 0 };
    h[8..16].copy_from_slice(&total.unwrap_or(0).to_be_bytes());
    h[16..24].copy_from_slice(&prefix.to_be_bytes());
    let mut crc = Crc32::new();
    crc.update(&h[..24]);
    for p in parts {
        crc.update(p);
    }
    h[24..28].copy_from_slice(&crc.finish().to_be_bytes());
    h
}

/// Checks and strips the header; `None` when anything is off.
fn decode_entry(mut bytes: Vec<u8>) -> Option<CachedTexture> {
    let h: [u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
    if h[..4] != MAGIC || h[4] != VERSION || h[6..8] != [0, 0] || h[5] & !FLAG_TOTAL_KNOWN != 0 {
        return None;
    }
    let total = u64::from_be_bytes(h[8..16].try_into().ok()?);
    let prefix = u64::from_be_bytes(h[16..24].try_into().ok()?);
    let stored = u32::from_be_bytes(h[24..28].try_into().ok()?);
    if (bytes.len() - HEADER_LEN) as u64 != prefix {
        return None;
    }
    let total_size = (h[5] & FLAG_TOTAL_KNOWN != 0).then_some(total);
    if total_size.is_some_and(|t| prefix > t) {
        return None;
    }
    let mut crc = Crc32::new();
    crc.update(&h[..24]);
    crc.update(&bytes[HEADER_LEN..]);
    if crc.finish() != stored {
        return None;
    }
    bytes.drain(..HEADER_LEN);
    Some(CachedTexture {
        data: bytes,
        total_size,
    })
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table-driven.
struct Crc32(u32);

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32 {
    fn new() -> Self {
        Crc32(0xFFFF_FFFF)
    }

    fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &b in data {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let data = b"\xFF\x4F\xFF\x51 some codestream";
        let h = encode_header(Some(100), data.len() as u64, &[data]);
        let mut file = h.to_vec();
        file.extend_from_slice(data);
        let tex = decode_entry(file.clone()).expect("valid entry");
        assert_eq!(tex.data, data);
        assert_eq!(tex.total_size, Some(100));
        assert!(!tex.is_complete());
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x20;
            assert!(decode_entry(bad).is_none(), "flip at {i} went unnoticed");
        }
        for n in 0..file.len() {
            assert!(
                decode_entry(file[..n].to_vec()).is_none(),
                "truncation to {n}"
            );
        }
    }
}
