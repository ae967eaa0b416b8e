#![allow(clippy::unwrap_used)]
//! A whole real session with OpenSimulator 0.9.2.2, replayed through our crates: the login
//! response through `opensim-login`, every datagram through `opensim-packet`, and what the
//! simulator sent through `opensim-regions`. The region state we end with must be the one
//! the server had: its saved terrain, its objects, its name.

use opensim_login::codec::decode_xmlrpc_response;
use opensim_login::{LoginReply, LoginResponse};
use opensim_messages::Message;
use opensim_packet::Packet;
use opensim_regions::handshake::RegionHandshake;
use opensim_regions::scene::{DecodeOptions, Scene};
use opensim_regions::terrain::{Heightmap, RegionSize};

#[test]
fn the_captured_session_rebuilds_the_servers_region() {
    let Some(dir) = opensim_testkit::fixture_subdir("opensim-0.9.2.2-session") else {
        return;
    };
    let body = std::fs::read(dir.join("login_response.xml")).unwrap();
    let login: LoginResponse =
        match LoginReply::from_members(decode_xmlrpc_response(&body).unwrap()).unwrap() {
            LoginReply::Success(r) => *r,
            other => panic!("{other:?}"),
        };
    let size = RegionSize::new(login.region_size_x, login.region_size_y).unwrap();
    let mut terrain = Heightmap::new(size);
    let mut scene = Scene::new(DecodeOptions::FULL);
    let mut events = Vec::new();
    let mut region_name = None;
    let mut reliable_from_sim = 0;
    for file in opensim_testkit::files_with_extension(&dir, "bin") {
        let wire = std::fs::read(&file).unwrap();
        let packet = Packet::decode(&wire).unwrap();
        if !file.to_str().unwrap().contains("_s2c_") {
            continue;
        }
        reliable_from_sim += usize::from(packet.reliable);
        match &packet.message {
            Message::RegionHandshake(h) => {
                region_name = Some(RegionHandshake::from(&**h).sim_name.clone());
            }
            Message::LayerData(l) if l.layer_id.type_ == b'L' => {
                terrain
                    .apply_layer_data(l.layer_id.type_, &l.layer_data.data)
                    .unwrap();
            }
            other => {
                scene.apply(other, &mut events).unwrap();
            }
        }
    }
    assert_eq!(region_name.as_deref(), Some("Test Region"));
    assert!(reliable_from_sim > 10);
    assert!(
        terrain.is_complete(),
        "{} patches",
        terrain.patches_received()
    );

    // The terrain equals what the server saved, within the patch codec's quantisation.
    let truth = std::fs::read(dir.join("terrain_truth.r32")).unwrap();
    let truth = Heightmap::from_r32_bytes(size, &truth).unwrap();
    let worst = terrain
        .as_slice()
        .iter()
        .zip(truth.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 0.22, "worst terrain error {worst} m");

    // Objects: the region is empty but for the avatar, moved by its terse update.
    assert_eq!(scene.len(), 1, "{} objects", scene.len());
    assert_eq!(scene.avatars().count(), 1);
    for o in scene.iter() {
        let p = o.motion.position;
        assert!(
            (0.0..256.0).contains(&p.x) && (0.0..256.0).contains(&p.y),
            "{p:?}"
        );
    }
    assert_eq!(
        scene.avatars().next().unwrap().full_id,
        login.agent_id,
        "the avatar in the scene is the one that logged in"
    );
}
