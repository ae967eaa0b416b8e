//! `osn`: the opensim-networking command line.
//!
//! `osn connect` logs in and writes a region's terrain, objects, textures and the session's
//! datagrams into a folder; without `--grid` it runs against the built-in loopback simulator.
//! `osn sim` runs that simulator alone, `osn bots` loads a grid with many agents, `osn decode`
//! reads captures, `osn assets serve` runs the asset server.

#![forbid(unsafe_code)]

mod assets;
mod bots;
mod connect;
mod decode;
mod grid;
mod misc;
mod output;
mod pcap;
mod tap;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::MultiProgress;
use opensim_packet::Packet;

/// The opensim-networking command line.
#[derive(Parser)]
#[command(name = "osn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode raw LLUDP datagram files (or the UDP payloads of a pcap capture).
    Decode {
        /// One JSON object per packet per line.
        #[arg(long)]
        json: bool,
        /// Decode the UDP payloads of this pcap capture.
        #[arg(long)]
        pcap: Option<PathBuf>,
        /// Datagram files (one raw UDP payload each).
        files: Vec<PathBuf>,
    },
    /// Log in, join the region, write terrain, objects, textures and a capture into a folder.
    Connect(connect::ConnectArgs),
    /// Log in and print the login response as JSON (secrets redacted).
    Login(misc::LoginArgs),
    /// Log in, say something in local chat, log out.
    Say(misc::SayArgs),
    /// Fetch one texture and write it as PNG.
    Texture(misc::TextureArgs),
    /// Run the loopback simulator until Ctrl-C.
    Sim(misc::SimArgs),
    /// Log many bots into a grid and report how they fare.
    Bots(bots::BotsArgs),
    /// The asset server.
    Assets {
        #[command(subcommand)]
        command: assets::AssetsCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mp = MultiProgress::new();
    init_logs(&mp);
    let result = match cli.command {
        Command::Decode { json, pcap, files } => return run_decode(json, pcap, &files),
        Command::Connect(args) => smol::block_on(connect::run(args, mp)),
        Command::Login(args) => smol::block_on(misc::login(args)),
        Command::Say(args) => smol::block_on(misc::say(args)),
        Command::Texture(args) => smol::block_on(misc::texture(args)),
        Command::Sim(args) => smol::block_on(misc::sim(args)),
        Command::Bots(args) => smol::block_on(bots::run(args, mp)),
        Command::Assets { command } => smol::block_on(assets::run(command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("osn: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (through the progress bars, so they do not tear them), filtered by
/// `RUST_LOG` (default: warnings, and our own crates' info). isahc warns of every request
/// that ends in an error, which our crates already report or retry (an event-queue poll cut
/// at logout, one timed out under load), so only its errors show by default.
fn init_logs(mp: &MultiProgress) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,osn=info,isahc=error"));
    let mp = mp.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || LogWriter(mp.clone()))
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Writes a log line above the progress bars.
struct LogWriter(MultiProgress);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let line = text.trim_end_matches('\n');
        if self.0.is_hidden() {
            eprintln!("{line}");
        } else {
            self.0.suspend(|| eprintln!("{line}"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn run_decode(json: bool, pcap: Option<PathBuf>, files: &[PathBuf]) -> ExitCode {
    let mut inputs: Vec<(String, Result<Vec<u8>, String>)> = Vec::new();
    for f in files {
        inputs.push((
            f.display().to_string(),
            std::fs::read(f).map_err(|e| e.to_string()),
        ));
    }
    if let Some(p) = &pcap {
        let name = p.display().to_string();
        match std::fs::read(p) {
            Err(e) => inputs.push((name, Err(e.to_string()))),
            Ok(bytes) => match pcap::udp_records(&bytes) {
                Err(e) => inputs.push((name, Err(e.to_string()))),
                Ok(recs) => {
                    for r in recs {
                        inputs.push((format!("{name}#{}", r.index), Ok(r.payload.to_vec())));
                    }
                }
            },
        }
    }
    if inputs.is_empty() {
        eprintln!("osn decode: give datagram files or --pcap FILE");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for (name, bytes) in inputs {
        let result = bytes.and_then(|b| {
            Packet::decode(&b)
                .map(|p| (b, p))
                .map_err(|e| e.to_string())
        });
        let line = match result {
            Ok((wire, p)) if json => decode::packet_json(&name, &wire, &p).to_string(),
            Ok((wire, p)) => decode::packet_text(&name, &wire, &p),
            Err(e) => {
                failed = true;
                if json {
                    serde_json::json!({"file": name, "error": e}).to_string()
                } else {
                    format!("{name}: error: {e}")
                }
            }
        };
        if writeln!(out, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
