//! `osn assets serve`: the standalone asset server.

use std::net::SocketAddr;

use opensim_assets::{AssetServer, ServerConfig};

use crate::grid::{CliError, fail};

/// Subcommands of `osn assets`.
#[derive(clap::Subcommand, Debug)]
pub enum AssetsCommand {
    /// Serve OpenSimulator's asset-service API until Ctrl-C.
    Serve {
        /// The database: a SQLite file path (`sqlite:PATH` or a plain path) or a PostgreSQL
        /// URL / OpenSimulator connection string.
        #[arg(long, default_value = "assets.db")]
        db: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8003")]
        listen: SocketAddr,
    },
}

/// Runs `osn assets ...`.
///
/// # Errors
/// When the database cannot be opened or the address bound.
pub async fn run(command: AssetsCommand) -> Result<(), CliError> {
    match command {
        AssetsCommand::Serve { db, listen } => {
            let mut cfg = ServerConfig::new(db);
            cfg.bind = listen;
            let server = AssetServer::bind(cfg).await?;
            println!("asset server on http://{}/", server.local_addr()?);
            let stop = server.shutdown_handle();
            ctrlc::set_handler(move || stop.shutdown())
                .map_err(|e| fail(format!("cannot install the Ctrl-C handler: {e}")))?;
            server.run().await?;
            Ok(())
        }
    }
}
