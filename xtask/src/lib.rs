//! Project automation behind `cargo xtask`.
//!
//! `cargo xtask codegen` regenerates `crates/messages/src/generated/` from the message
//! template; `cargo xtask codegen --check` fails, naming the stale file, when the committed
//! output differs from what the template produces. `cargo xtask demo-textures [--check]`
//! regenerates the simulator's demo textures (see [`demo_textures`]).

#![forbid(unsafe_code)]

pub mod demo_textures;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the generated message code lives, relative to the workspace root.
pub const GENERATED_DIR: &str = "crates/messages/src/generated";

/// Why code generation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum CodegenError {
    /// No template file was found in any of the usual places.
    NoTemplate(Vec<PathBuf>),
    /// Reading or writing a file failed.
    Io(PathBuf, std::io::Error),
    /// The template does not parse.
    Parse(PathBuf, opensim_template::ParseError),
    /// rustfmt could not format the output.
    Rustfmt(String),
    /// `--check`: these files differ from what the template produces (or are missing/extra).
    Stale(Vec<PathBuf>),
}

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodegenError::NoTemplate(tried) => {
                write!(f, "no message template found; tried:")?;
                for p in tried {
                    write!(f, " {}", p.display())?;
                }
                Ok(())
            }
            CodegenError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            CodegenError::Parse(p, e) => write!(f, "{}: {e}", p.display()),
            CodegenError::Rustfmt(e) => write!(f, "rustfmt failed: {e}"),
            CodegenError::Stale(files) => {
                write!(f, "generated code is stale (run `cargo xtask codegen`):")?;
                for p in files {
                    write!(f, " {}", p.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CodegenError {}

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Resolves the template: `--template`, then `$OPENSIM_TEMPLATE`, then
/// `spec/message_template.msg`, then `../shared/protocol/message_template.msg`.
///
/// # Errors
/// [`CodegenError::NoTemplate`] listing the places tried.
pub fn resolve_template(root: &Path, explicit: Option<&Path>) -> Result<PathBuf, CodegenError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("OPENSIM_TEMPLATE") {
        return Ok(PathBuf::from(p));
    }
    for candidate in [
        root.join("spec/message_template.msg"),
        root.join("../shared/protocol/message_template.msg"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate);
    }
    Err(CodegenError::NoTemplate(tried))
}

/// Parses the template and returns the formatted generated files (path, contents).
///
/// # Errors
/// When the template cannot be read or parsed, or rustfmt fails.
pub fn render(template: &Path) -> Result<Vec<(String, String)>, CodegenError> {
    let text = std::fs::read_to_string(template)
        .map_err(|e| CodegenError::Io(template.to_path_buf(), e))?;
    let model = opensim_template::parse_template(&text)
        .map_err(|e| CodegenError::Parse(template.to_path_buf(), e))?;
    opensim_template::generate(&model)
        .into_iter()
        .map(|f| Ok((f.path, rustfmt(&f.contents)?)))
        .collect()
}

/// Formats Rust source with the workspace's rustfmt settings.
///
/// # Errors
/// When rustfmt is missing or rejects the source.
pub fn rustfmt(source: &str) -> Result<String, CodegenError> {
    let root = workspace_root();
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CodegenError::Rustfmt(e.to_string()))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| CodegenError::Rustfmt("no stdin".into()))?;
    let input = source.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child
        .wait_with_output()
        .map_err(|e| CodegenError::Rustfmt(e.to_string()))?;
    writer
        .join()
        .map_err(|_| CodegenError::Rustfmt("writer thread panicked".into()))?
        .map_err(|e| CodegenError::Rustfmt(e.to_string()))?;
    if !output.status.success() {
        return Err(CodegenError::Rustfmt(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| CodegenError::Rustfmt(e.to_string()))
}

/// Writes the generated files into `out_dir`, removing `.rs` files that are no longer generated.
///
/// # Errors
/// On I/O failure.
pub fn write(out_dir: &Path, files: &[(String, String)]) -> Result<(), CodegenError> {
    std::fs::create_dir_all(out_dir).map_err(|e| CodegenError::Io(out_dir.to_path_buf(), e))?;
    for stale in existing_rs(out_dir)? {
        if !files.iter().any(|(p, _)| out_dir.join(p) == stale) {
            std::fs::remove_file(&stale).map_err(|e| CodegenError::Io(stale.clone(), e))?;
        }
    }
    for (path, contents) in files {
        let p = out_dir.join(path);
        let same = std::fs::read_to_string(&p).is_ok_and(|old| old == *contents);
        if !same {
            std::fs::write(&p, contents).map_err(|e| CodegenError::Io(p.clone(), e))?;
        }
    }
    Ok(())
}

/// Compares `out_dir` with the generated files.
///
/// # Errors
/// [`CodegenError::Stale`] naming every file that differs, is missing, or should not be there.
pub fn check(out_dir: &Path, files: &[(String, String)]) -> Result<(), CodegenError> {
    let mut stale = Vec::new();
    for (path, contents) in files {
        let p = out_dir.join(path);
        match std::fs::read_to_string(&p) {
            Ok(old) if old == *contents => {}
            _ => stale.push(p),
        }
    }
    if out_dir.is_dir() {
        for extra in existing_rs(out_dir)? {
            if !files.iter().any(|(p, _)| out_dir.join(p) == extra) {
                stale.push(extra);
            }
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(CodegenError::Stale(stale))
    }
}

fn existing_rs(dir: &Path) -> Result<Vec<PathBuf>, CodegenError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| CodegenError::Io(dir.to_path_buf(), e))?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
