//! A hundred clients at once.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Viewer, login, run, wait_for};
use opensim_sim::{Scene, Sim, SimConfig, User};

const CLIENTS: usize = 100;
/// Logins are made from this many tasks; each viewer then runs in a task of its own.
const TASKS: usize = 4;

#[test]
fn a_hundred_clients_log_in_get_the_world_and_log_out() {
    run(600, async {
        let scene = Scene::default_demo();
        let prims = scene.prims.len();
        let mut config = SimConfig::new(scene);
        for i in 0..CLIENTS {
            config
                .users
                .push(User::new("Bot", &format!("N{i:03}"), "pw"));
        }
        let sim = std::sync::Arc::new(Sim::start(config).await.unwrap());
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let sim = sim.clone();
            tasks.push(smol::spawn(async move {
                let mine: Vec<usize> = (0..CLIENTS).filter(|i| i % TASKS == t).collect();
                let mut viewers = Vec::new();
                for i in &mine {
                    let l = login(&sim, "Bot", &format!("N{i:03}"), "pw").await;
                    viewers.push(Viewer::connect(&sim, l).await);
                }
                // All of this task's circuits make progress together.
                let runs: Vec<_> = viewers
                    .into_iter()
                    .map(|mut v| {
                        smol::spawn(async move {
                            v.until(|v| v.in_world(prims)).await;
                            v
                        })
                    })
                    .collect();
                let mut done = Vec::new();
                for r in runs {
                    done.push(r.await);
                }
                for v in &mut done {
                    v.logout().await;
                }
                done.len()
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await;
        }
        assert_eq!(total, CLIENTS);
        wait_for(|| sim.agents().is_empty()).await;
        std::sync::Arc::try_unwrap(sim).unwrap().shutdown().await;
    });
}
