//! Textures the simulator does not hold come from a real asset server (opensim-assets on
//! SQLite, started here), over HTTP and over UDP, byte for byte.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use futures_lite::FutureExt;
use opensim_assets::{AssetBase, AssetMeta, AssetServer, ServerConfig, SqliteStore, Store};
use opensim_client::{Client, ClientConfig, TextureVia};
use opensim_login::{LoginParams, Password};
use opensim_sim::{DEMO_TEXTURES, Scene, Sim, SimConfig, User};
use uuid::Uuid;

/// A guard against hangs only; nothing asserts on timing.
fn run<T>(f: impl Future<Output = T>) -> T {
    smol::block_on(f.or(async {
        async_io::Timer::after(Duration::from_secs(120)).await;
        panic!("test hung");
    }))
}

#[test]
fn textures_missing_from_the_scene_come_from_the_asset_server() {
    run(async {
        // An asset the scene does not carry, stored in the asset server's database.
        let id = Uuid::from_u128(0xa55e_7000_0000_4000_8000_0000_0000_0001);
        let j2c = DEMO_TEXTURES[1].j2c.to_vec();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("assets.db");
        {
            let store = SqliteStore::open(&db).unwrap();
            let meta = AssetMeta {
                id,
                name: "from the asset server".into(),
                ..AssetMeta::default()
            };
            assert!(store.put(AssetBase::from_parts(meta, j2c.clone())).unwrap());
        }
        let mut cfg = ServerConfig::new(db.to_str().unwrap());
        cfg.bind = "127.0.0.1:0".parse().unwrap();
        let server = AssetServer::bind(cfg).await.unwrap();
        let base = format!("http://{}", server.local_addr().unwrap());
        let stop = server.shutdown_handle();
        let serving = smol::spawn(server.run());

        let mut scene = Scene::default_demo();
        assert!(!scene.textures.contains_key(&id));
        scene.prims[0].texture = id;
        let mut config = SimConfig::new(scene);
        config.asset_server = Some(base);
        config.users.push(User::new("Test", "User", "secret"));
        let sim = Sim::start(config).await.unwrap();

        let params = LoginParams::builder(sim.login_uri(), "Test", "User", Password::new("secret"))
            .build()
            .unwrap();
        let session = Client::new(ClientConfig::new())
            .unwrap()
            .login(&params)
            .await
            .unwrap();
        session.wait_region_ready().await.unwrap();
        for via in [TextureVia::Http, TextureVia::Udp] {
            let tex = session.texture(id, 0, via).await.unwrap();
            assert_eq!(&tex.j2k[..], &j2c[..], "{via:?}");
            assert_eq!((tex.width, tex.height), (512, 512), "{via:?}");
        }
        // Neither the scene nor the asset server has this one.
        let unknown = Uuid::from_u128(0xdead_0000_0000_4000_8000_0000_0000_0001);
        assert!(session.texture(unknown, 0, TextureVia::Http).await.is_err());
        assert!(session.texture(unknown, 0, TextureVia::Udp).await.is_err());

        session.logout().await.unwrap();
        sim.shutdown().await;
        stop.shutdown();
        serving.await.unwrap();
    });
}
