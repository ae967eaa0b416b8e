//! `cargo xtask codegen [--check] [--template PATH]`.

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask codegen [--check] [--template PATH]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("codegen") => {}
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
