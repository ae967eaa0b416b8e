//! Parse and serialize speed of realistic documents in the three formats: a seed-capability
//! answer (48 cap URLs) and an event-queue reply (two ParcelProperties events and a
//! TeleportFinish, shaped like OpenSimulator's).
//!
//! `cargo bench -p opensim-llsd --bench llsd`

#![allow(clippy::unwrap_used)]

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use opensim_llsd::{Date, Format, Map, Uuid, Value, parse, serialize};

fn main() {
    divan::main();
}

const CAPS: [&str; 48] = [
    "AgentPreferences",
    "AttachmentResources",
    "AvatarPickerSearch",
    "CopyInventoryFromNotecard",
    "CreateInventoryCategory",
    "DispatchRegionInfo",
    "EnvironmentSettings",
    "EstateAccess",
    "EstateChangeInfo",
    "EventQueueGet",
    "ExtEnvironment",
    "FetchInventory2",
    "FetchInventoryDescendents2",
    "FetchLib2",
    "FetchLibDescendents2",
    "GetDisplayNames",
    "GetMesh",
    "GetMesh2",
    "GetObjectCost",
    "GetObjectPhysicsData",
    "GetTexture",
    "GroupMemberData",
    "HomeLocation",
    "LSLSyntax",
    "LandResources",
    "MapLayer",
    "MapLayerGod",
    "MeshUploadFlag",
    "NewFileAgentInventory",
    "ObjectAdd",
    "ObjectMedia",
    "ObjectMediaNavigate",
    "ParcelPropertiesUpdate",
    "ParcelVoiceInfoRequest",
    "ProvisionVoiceAccountRequest",
    "RemoteParcelRequest",
    "RenderMaterials",
    "ResourceCostSelected",
    "ServerReleaseNotes",
    "SimConsoleAsync",
    "SimulatorFeatures",
    "UpdateAgentInformation",
    "UpdateAgentLanguage",
    "UpdateGestureAgentInventory",
    "UpdateNotecardAgentInventory",
    "UpdateScriptAgent",
    "UploadBakedTexture",
    "ViewerAsset",
];

fn seed_response() -> Value {
    CAPS.iter()
        .enumerate()
        .map(|(i, name)| {
            let id = Uuid::from_u128(0x2964_444d_5e1d_4db0_9835_9c11_1a8a_d400 + i as u128);
            (
                *name,
                Value::from(format!("http://127.0.0.1:9000/{}", id.hyphenated())),
            )
        })
        .collect::<Map>()
        .into()
}

fn parcel_properties(seq: i32) -> Value {
    let owner = Uuid::from_u128(0xaaaaaaaa_bbbb_4ccc_8ddd_000000000001);
    let vec3 =
        |x: f64, y: f64, z: f64| Value::Array(vec![Value::Real(x), Value::Real(y), Value::Real(z)]);
    let mut data = Map::new();
    data.push("LocalID", 1);
    data.push("AABBMax", vec3(256.0, 256.0, 24.009));
    data.push("AABBMin", vec3(0.0, 0.0, 4.0));
    data.push("Area", 65536);
    data.push("AuctionID", 0);
    data.push("AuthBuyerID", Uuid::nil());
    data.push("Bitmap", vec![0xffu8; 512]);
    data.push("Category", 0);
    data.push(
        "ClaimDate",
        Date::from_ymd_hms(2026, 11, 25, 9, 40, 46).unwrap(),
    );
    data.push("ClaimPrice", 0);
    data.push("Desc", "");
    data.push("ParcelFlags", vec![0x28u8, 0x00, 0x20, 0x4b]);
    data.push("GroupID", Uuid::nil());
    data.push("IsGroupOwned", false);
    data.push("LandingType", 2);
    data.push("MaxPrims", 15000);
    data.push("MediaID", Uuid::nil());
    data.push("MediaURL", "");
    data.push("MusicURL", "");
    data.push("Name", "Your Parcel");
    data.push("OwnerID", owner);
    data.push("OwnerPrims", 42);
    data.push("ParcelPrimBonus", 1.0);
    data.push("PassHours", 0.0);
    for key in [
        "PassPrice",
        "PublicCount",
        "RentPrice",
        "RequestResult",
        "SalePrice",
        "SelectedPrims",
    ] {
        data.push(key, 0);
    }
    for key in [
        "RegionDenyAnonymous",
        "RegionDenyIdentified",
        "RegionDenyTransacted",
        "SnapSelection",
    ] {
        data.push(key, false);
    }
    data.push("SequenceID", seq);
    data.push("SimWideMaxPrims", 15000);
    data.push("SimWideTotalPrims", 42);
    data.push("TotalPrims", 42);
    data.push("UserLocation", vec3(0.0, 0.0, 0.0));
    data.push("UserLookAt", vec3(0.0, 0.0, 0.0));
    data.push("SeeAVs", true);
    let mut media = Map::new();
    media.push("MediaDesc", "");
    media.push("MediaHeight", 0);
    media.push("MediaWidth", 0);
    media.push("MediaLoop", false);
    media.push("MediaType", "none/none");
    let mut body = Map::new();
    body.push("ParcelData", Value::Array(vec![data.into()]));
    body.push("MediaData", Value::Array(vec![media.into()]));
    body.push(
        "ParcelExtendedFlags",
        Value::Array(vec![
            [("Flags", vec![0u8; 4])]
                .into_iter()
                .collect::<Map>()
                .into(),
        ]),
    );
    event("ParcelProperties", body)
}

fn teleport_finish() -> Value {
    let mut info = Map::new();
    info.push(
        "AgentID",
        Uuid::from_u128(0xaaaaaaaa_bbbb_4ccc_8ddd_000000000001),
    );
    info.push("LocationID", vec![0u8, 0, 0, 4]);
    info.push("SimIP", vec![127u8, 0, 0, 1]);
    info.push("SimPort", 9001);
    info.push(
        "RegionHandle",
        1_101_710_651_287_552u64.to_be_bytes().to_vec(),
    );
    info.push(
        "SeedCapability",
        "http://127.0.0.1:9000/CAPS/2ebfc512-a11e-4649-93cf-5c032008194d0000/",
    );
    info.push("SimAccess", 13);
    info.push("TeleportFlags", vec![0u8, 0, 0, 16]);
    info.push("RegionSizeX", vec![0u8, 0, 2, 0]);
    info.push("RegionSizeY", vec![0u8, 0, 2, 0]);
    let mut body = Map::new();
    body.push("Info", Value::Array(vec![info.into()]));
    event("TeleportFinish", body)
}

fn event(name: &str, body: Map) -> Value {
    [("message", Value::from(name)), ("body", body.into())]
        .into_iter()
        .collect::<Map>()
        .into()
}

fn event_queue_reply() -> Value {
    let mut reply = Map::new();
    reply.push(
        "events",
        Value::Array(vec![
            parcel_properties(0),
            parcel_properties(1),
            teleport_finish(),
        ]),
    );
    reply.push("id", 18_632_324);
    reply.into()
}

const FORMATS: [Format; 3] = Format::ALL;

#[divan::bench(args = FORMATS)]
fn parse_seed_response(bencher: Bencher, format: Format) {
    let bytes = serialize(format, &seed_response());
    bencher
        .counter(BytesCount::of_slice(&bytes))
        .bench(|| parse(format, black_box(&bytes)).unwrap());
}

#[divan::bench(args = FORMATS)]
fn serialize_seed_response(bencher: Bencher, format: Format) {
    let value = seed_response();
    let len = serialize(format, &value).len();
    bencher
        .counter(BytesCount::new(len))
        .bench(|| serialize(format, black_box(&value)));
}

#[divan::bench(args = FORMATS)]
fn parse_event_queue_reply(bencher: Bencher, format: Format) {
    let bytes = serialize(format, &event_queue_reply());
    bencher
        .counter(BytesCount::of_slice(&bytes))
        .bench(|| parse(format, black_box(&bytes)).unwrap());
}

#[divan::bench(args = FORMATS)]
fn serialize_event_queue_reply(bencher: Bencher, format: Format) {
    let value = event_queue_reply();
    let len = serialize(format, &value).len();
    bencher
        .counter(BytesCount::new(len))
        .bench(|| serialize(format, black_box(&value)));
}
