//! `osn`: the opensim-networking command line.

#![forbid(unsafe_code)]

mod decode;
mod pcap;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { json, pcap, files } => run_decode(json, pcap, &files),
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
