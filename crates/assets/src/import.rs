//! Import from and export to folders of asset files.
//!
//! Import accepts, per file: `<uuid>.xml` holding an `<AssetBase>` document (what
//! [`export_dir`] writes, metadata preserved), or raw bytes named `<uuid>` or
//! `<uuid>_<kind>.<ext>` with the type taken from the suffix/extension as in OpenSimulator
//! archives (`_texture.jp2`, `_notecard.txt`, `_sound.ogg`, …; `.j2c`/`.jp2` alone = texture).

use std::path::Path;

use uuid::Uuid;

use crate::store::{Store, StoreError};
use crate::xml::{self, AssetBase};

/// Import/export failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Filesystem error.
    #[error("i/o on {path}: {source}")]
    Io {
        /// File or folder concerned.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Store error.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Assets newly stored.
    pub stored: usize,
    /// Assets whose id already existed (left untouched).
    pub existing: usize,
    /// File names skipped (not an asset name, unreadable XML, too big).
    pub skipped: Vec<String>,
}

const SUFFIXES: &[(&str, i8)] = &[
    ("_animation.bvh", 20),
    ("_bodypart.txt", 13),
    ("_callingcard.txt", 2),
    ("_clothing.txt", 5),
    ("_object.xml", 6),
    ("_notecard.txt", 7),
    ("_script.lsl", 10),
    ("_script.lso", 11),
    ("_sound.ogg", 1),
    ("_sound.wav", 17),
    ("_texture.jp2", 0),
    ("_texture.tga", 12),
    ("_image.tga", 18),
    ("_image.jpg", 19),
    ("_landmark.txt", 3),
    ("_gesture.txt", 21),
    ("_mesh.llmesh", 49),
    ("_settings.bin", 56),
    ("_material.xml", 57),
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Imports every file of `dir` (not recursive). Files above `max_size` bytes are skipped.
pub fn import_dir(
    store: &dyn Store,
    dir: &Path,
    max_size: u64,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = e.metadata().map_err(io(&path))?;
        if !meta.is_file() || meta.len() > max_size || name.len() < 36 {
            report.skipped.push(name);
            continue;
        }
        let Ok(id) = Uuid::parse_str(&name[..36]) else {
            report.skipped.push(name);
            continue;
        };
        let rest = &name[36..];
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let asset = if rest == ".xml" {
            match xml::parse_asset_base(&bytes) {
                Ok(a) if a.id == id => a,
                _ => {
                    report.skipped.push(name);
                    continue;
                }
            }
        } else {
            let asset_type = SUFFIXES
                .iter()
                .find(|(s, _)| *s == rest)
                .map(|(_, t)| *t)
                .or(match rest {
                    ".j2c" | ".jp2" => Some(0),
                    "" | ".bin" => Some(-1),
                    _ => None,
                });
            let Some(asset_type) = asset_type else {
                report.skipped.push(name);
                continue;
            };
            AssetBase {
                id,
                name: name.clone(),
                asset_type,
                data: bytes,
                ..AssetBase::default()
            }
        };
        let mut asset = asset;
        xml::truncate_name(&mut asset.name);
        xml::truncate_name(&mut asset.description);
        if store.put(asset)? {
            report.stored += 1;
        } else {
            report.existing += 1;
        }
    }
    Ok(report)
}

/// Writes every asset as `<uuid>.xml` (`<AssetBase>` document) into `dir`; returns the count.
pub fn export_dir(store: &dyn Store, dir: &Path) -> Result<usize, ImportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut n = 0;
    let mut buf = Vec::new();
    for id in store.ids()? {
        let Some(a) = store.get(id)? else { continue };
        buf.clear();
        xml::write_asset_base(&mut buf, &a.meta(), &a.data);
        let path = dir.join(format!("{id}.xml"));
        std::fs::write(&path, &buf).map_err(io(&path))?;
        n += 1;
    }
    Ok(n)
}
