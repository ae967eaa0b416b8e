//! `cargo xtask codegen [--check] [--template PATH]`, `cargo xtask demo-textures [--check]`.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask codegen [--check] [--template PATH]");
    eprintln!("       cargo xtask demo-textures [--check]");
    ExitCode::from(2)
}

/// Writes (or with `--check` compares) the demo scene's textures in `crates/sim/textures`.
fn demo_textures(args: impl Iterator<Item = String>) -> ExitCode {
    use xtask::demo_textures as dt;
    let mut check = false;
    for a in args {
        match a.as_str() {
            "--check" => check = true,
            _ => return usage(),
        }
    }
    let dir = xtask::workspace_root().join(dt::TEXTURE_DIR);
    let result = dt::render().and_then(|files| {
        if check {
            dt::check(&dir, &files)?;
            println!("demo textures in {} are up to date", dir.display());
        } else {
            dt::write(&dir, &files)?;
            for (name, bytes) in &files {
                println!("{:>7} bytes  {}", bytes.len(), dir.join(name).display());
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("codegen") => {}
        Some("demo-textures") => return demo_textures(args),
        _ => return usage(),
    }
    let mut check = false;
    let mut template: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--check" => check = true,
            "--template" => match args.next() {
                Some(p) => template = Some(PathBuf::from(p)),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    let root = xtask::workspace_root();
    let out_dir = root.join(xtask::GENERATED_DIR);
    let result = xtask::resolve_template(&root, template.as_deref()).and_then(|t| {
        let files = xtask::render(&t)?;
        if check {
            xtask::check(&out_dir, &files)?;
            println!("generated code is up to date with {}", t.display());
        } else {
            xtask::write(&out_dir, &files)?;
            println!("wrote {} files from {}", files.len(), t.display());
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
