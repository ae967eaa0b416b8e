//! Arbitrary LLSD under every event name: typed or `Malformed`, never a panic.
#![allow(clippy::unwrap_used)]

use opensim_caps::{Event, Value, parse_event, parse_poll_reply};
use opensim_llsd::Map;
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "EnableSimulator",
    "EstablishAgentCommunication",
    "TeleportFinish",
    "CrossedRegion",
    "DisableSimulator",
    "ParcelProperties",
    "AgentGroupDataUpdate",
    "ScriptRunningReply",
    "ObjectPhysicsProperties",
    "WindLightRefresh",
    "ChatterBoxInvitation",
    "ChatterBoxSessionStartReply",
    "ChatterBoxSessionAgentListUpdates",
    "ForceCloseChatterBoxSession",
    "SomethingElse",
];

/// Keys the parsers look for, so that generated maps reach deep into them.
const KEYS: &[&str] = &[
    "SimulatorInfo",
    "Handle",
    "IP",
    "Port",
    "RegionSizeX",
    "Info",
    "AgentID",
    "SimIP",
    "SimPort",
    "RegionHandle",
    "SeedCapability",
    "SimAccess",
    "TeleportFlags",
    "AgentData",
    "SessionID",
    "RegionData",
    "Position",
    "LookAt",
    "ParcelData",
    "LocalID",
    "Bitmap",
    "MediaData",
    "ParcelExtendedFlags",
    "Flags",
    "GroupData",
    "NewGroupData",
    "GroupID",
    "GroupPowers",
    "Script",
    "ObjectID",
    "ItemID",
    "ObjectData",
    "session_id",
    "agent-id",
    "sim-ip-and-port",
    "seed-capability",
    "instantmessage",
    "message_params",
    "data",
    "binary_bucket",
    "session_info",
    "moderated_mode",
    "agent_updates",
    "updates",
    "info",
    "mutes",
    "transition",
    "events",
    "id",
    "message",
    "body",
    "aaaaaaaa-bbbb-4ccc-8ddd-000000000001",
];

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Undef),
        any::<bool>().prop_map(Value::Boolean),
        any::<i32>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        prop_oneof![
            Just("127.0.0.1:9000".to_owned()),
            Just("ENTER".to_owned()),
            Just("http://h/x".to_owned()),
            ".{0,8}"
        ]
        .prop_map(Value::String),
        any::<u128>().prop_map(|n| Value::Uuid(uuid::Uuid::from_u128(n))),
        proptest::collection::vec(any::<u8>(), 0..10).prop_map(Value::Binary),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6)
                .prop_map(|kv| Value::Map(kv.into_iter().collect::<Map>())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in value(), name in proptest::sample::select(NAMES)) {
        let e = parse_event(name.to_owned(), body.clone());
        prop_assert_eq!(e.name(), name);
        if let Event::Malformed { body: kept, .. } | Event::Other { body: kept, .. } = &e {
            prop_assert_eq!(kept, &body);
        }
    }

    #[test]
    fn arbitrary_poll_answers_never_panic(v in value()) {
        let _ = parse_poll_reply(v);
    }
}
