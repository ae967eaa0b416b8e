//! Runs the asset server: `cargo run -p opensim-assets --example serve -- DB [ADDR]`.
//! `DB` picks the backend: an SQLite path or `sqlite:PATH`, a `postgres://user:pass@host/db`
//! URL, or an OpenSimulator connection string `"Server=host;Database=db;User Id=u;Password=p;"`.
//! Prints `PORT <n>` once listening.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = args.next().ok_or("usage: serve DB [ADDR]  (DB: PATH | sqlite:PATH | postgres://... | Server=...;Database=...;)")?;
    let mut cfg = opensim_assets::ServerConfig::new(db);
    if let Some(addr) = args.next() {
        cfg.bind = addr.parse()?;
    }
    smol::block_on(async {
        let server = opensim_assets::AssetServer::bind(cfg).await?;
        println!("PORT {}", server.local_addr()?.port());
        server.run().await?;
        Ok(())
    })
}
