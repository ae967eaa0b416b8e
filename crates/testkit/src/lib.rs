//! Test support for the opensim-networking workspace.
//!
//! Real captures live outside the repository (in `../shared/fixtures` by default, or wherever
//! `$OPENSIM_FIXTURES` points). Tests call [`fixtures_dir`] or [`fixture_subdir`]: when the
//! folder is missing they get `None` and a printed notice, so that a checkout without the
//! shared data still passes; under `CI=true` a missing folder is a test failure instead.
//!
//! ```no_run
//! if let Some(dir) = opensim_testkit::fixture_subdir("captured") {
//!     for file in opensim_testkit::files_with_extension(&dir, "bin") {
//!         let _bytes = std::fs::read(file).unwrap();
//!     }
//! }
//! ```

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // Every member sits two levels below the root (`crates/x`), except `tests/` and `xtask/`.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|p| p.join("Cargo.toml").is_file() && p.join("crates").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(manifest)
}

/// Whether we run under CI (`CI=true`), where missing fixtures are an error.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The shared fixtures folder, or `None` (after printing why) when it is absent outside CI.
///
/// # Panics
/// Under `CI=true` when the folder is absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("OPENSIM_FIXTURES") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("..").join("shared").join("fixtures"),
    };
    present_or_skip(dir)
}

/// The shared protocol folder (`../shared/protocol`, or `$OPENSIM_PROTOCOL`), like [`fixtures_dir`].
///
/// # Panics
/// Under `CI=true` when the folder is absent.
pub fn protocol_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("OPENSIM_PROTOCOL") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("..").join("shared").join("protocol"),
    };
    present_or_skip(dir)
}

/// A subfolder of the fixtures, like [`fixtures_dir`].
///
/// # Panics
/// Under `CI=true` when the folder is absent.
pub fn fixture_subdir(sub: &str) -> Option<PathBuf> {
    fixtures_dir().and_then(|d| present_or_skip(d.join(sub)))
}

fn present_or_skip(dir: PathBuf) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "fixtures folder {} is missing and CI=true: the shared fixtures are required in CI",
        dir.display()
    );
    eprintln!("skipped: fixtures folder {} is absent", dir.display());
    None
}

/// The files directly inside `dir` whose names end in `.{ext}`, sorted by name.
///
/// # Panics
/// When the folder cannot be read (a test setup error).
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}
