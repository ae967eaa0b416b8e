#![allow(clippy::unwrap_used)]
//! Conformance on real captures: every datagram decodes, its message name matches the file
//! name, it re-encodes to identical bytes, and every field of node-metaverse's decode of the
//! peer packets equals ours.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use opensim_messages::{FieldValue, Frequency, Message, Visitor};
use opensim_packet::{Header, Packet};
use serde_json::Value;

/// (file, expected message name if the file name tells it).
fn datagrams(root: &Path) -> Vec<(PathBuf, Option<String>)> {
    let mut out = Vec::new();
    let captured = root.join("captured");
    for (file, name) in [
        ("region_handshake.bin", Some("RegionHandshake")),
        ("appended_acks.bin", None),
    ] {
        out.push((captured.join(file), name.map(String::from)));
    }
    for sub in ["layer_land", "layer_varland"] {
        for f in opensim_testkit::files_with_extension(&captured.join(sub), "bin") {
            out.push((f, Some("LayerData".into())));
        }
    }
    for f in opensim_testkit::files_with_extension(&root.join("peer-packets"), "packet") {
        let stem = f.file_stem().unwrap().to_str().unwrap();
        // `ChatFromSimulatorMessageL`: the message name, "Message", then flag letters.
        let name = stem.trim_end_matches(['A', 'Z', 'L']);
        let name = name.strip_suffix("Message").unwrap_or(name).to_string();
        out.push((f, Some(name)));
    }
    let mut sessions = vec![root.join("opensim-0.9.2.2-session")];
    if let Ok(dirs) = std::fs::read_dir(root.join("opensim-0.9.2.2-http")) {
        let mut dirs: Vec<PathBuf> = dirs.filter_map(|d| d.ok().map(|d| d.path())).collect();
        dirs.sort();
        sessions.extend(dirs.into_iter().filter(|d| d.is_dir()));
    }
    for dir in sessions {
        for f in opensim_testkit::files_with_extension(&dir, "bin") {
            let stem = f.file_stem().unwrap().to_str().unwrap().to_string();
            // `0004_s2c_RegionHandshake`
            let mut parts = stem.splitn(3, '_');
            let (_, dir_part, name) = (parts.next(), parts.next(), parts.next());
            if !matches!(dir_part, Some("c2s" | "s2c")) || name == Some("http_resp_body") {
                continue;
            }
            out.push((f, name.map(String::from)));
        }
    }
    out
}

#[test]
fn every_fixture_decodes_matches_its_name_and_re_encodes_identically() {
    let Some(root) = opensim_testkit::fixtures_dir() else {
        return;
    };
    let files = datagrams(&root);
    assert!(files.len() > 150, "only {} datagrams found", files.len());
    let mut unknown = 0;
    for (file, name) in &files {
        let wire = std::fs::read(file).unwrap();
        let packet = Packet::decode(&wire).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Some(name) = name {
            assert_eq!(packet.message.name(), name, "{}", file.display());
        }
        if matches!(packet.message, Message::Unknown(_)) {
            unknown += 1;
        }
        let again = packet.to_bytes().unwrap();
        assert_eq!(
            &again[..],
            &wire[..],
            "{} re-encodes differently",
            file.display()
        );

        // The zero-copy decode agrees, and the header peek agrees with both.
        let shared = Packet::decode_bytes(&Bytes::from(wire.clone())).unwrap();
        assert_eq!(shared, packet, "{}", file.display());
        let h = Header::peek(&wire).unwrap();
        assert_eq!(h.id, packet.message.id());
        assert_eq!(h.sequence, packet.sequence);
        assert_eq!(h.ack_count, packet.acks.len());
    }
    assert_eq!(unknown, 0, "every captured message is in the template");
}

#[test]
fn appended_acks_and_zero_coded_handshake_from_the_2018_captures() {
    let Some(captured) = opensim_testkit::fixture_subdir("captured") else {
        return;
    };
    let wire = std::fs::read(captured.join("appended_acks.bin")).unwrap();
    let p = Packet::decode(&wire).unwrap();
    assert!(!p.acks.is_empty());
    // Appended acks are big-endian, the count byte last.
    let k = usize::from(*wire.last().unwrap());
    assert_eq!(p.acks.len(), k);
    let first = &wire[wire.len() - 1 - 4 * k..][..4];
    assert_eq!(
        p.acks.iter().next().unwrap(),
        u32::from_be_bytes(first.try_into().unwrap())
    );

    let wire = std::fs::read(captured.join("region_handshake.bin")).unwrap();
    assert_eq!(wire[0] & 0x80, 0x80, "the capture is zero-coded");
    // `FF FF 00 01 94`: Low 148 with its zero byte coded.
    assert_eq!(&wire[6..11], &[0xFF, 0xFF, 0x00, 0x01, 0x94]);
    let p = Packet::decode(&wire).unwrap();
    assert!(p.reliable);
    assert_eq!(p.message.name(), "RegionHandshake");
}

/// Our decode as JSON in node-metaverse's layout: Single blocks as objects, others as arrays.
#[derive(Default)]
struct Collect {
    blocks: serde_json::Map<String, Value>,
    current: Option<(String, bool)>,
}

impl Visitor for Collect {
    fn block(&mut self, name: &'static str, count: usize) {
        let _ = count;
        self.current = Some((name.to_string(), false));
        self.blocks
            .insert(name.to_string(), Value::Array(Vec::new()));
    }
    fn instance(&mut self, _index: usize) {
        let (name, _) = self.current.clone().unwrap();
        if let Some(Value::Array(a)) = self.blocks.get_mut(&name) {
            a.push(Value::Object(serde_json::Map::new()));
        }
    }
    fn field(&mut self, name: &'static str, value: FieldValue<'_>) {
        let (block, _) = self.current.clone().unwrap();
        let Some(Value::Array(a)) = self.blocks.get_mut(&block) else {
            unreachable!()
        };
        let Some(Value::Object(o)) = a.last_mut() else {
            unreachable!()
        };
        o.insert(name.to_string(), ours(value));
    }
}

fn ours(v: FieldValue<'_>) -> Value {
    use serde_json::json;
    match v {
        FieldValue::U8(x) => json!(x),
        FieldValue::U16(x) => json!(x),
        FieldValue::U32(x) => json!(x),
        FieldValue::U64(x) => json!(x),
        FieldValue::S8(x) => json!(x),
        FieldValue::S16(x) => json!(x),
        FieldValue::S32(x) => json!(x),
        FieldValue::S64(x) => json!(x),
        FieldValue::F32(x) => json!(f64::from(x)),
        FieldValue::F64(x) => json!(x),
        FieldValue::Vector3(v) => json!([f64::from(v.x), f64::from(v.y), f64::from(v.z)]),
        FieldValue::Vector3d(v) => json!([v.x, v.y, v.z]),
        FieldValue::Vector4(v) => {
            json!([
                f64::from(v.x),
                f64::from(v.y),
                f64::from(v.z),
                f64::from(v.w)
            ])
        }
        FieldValue::Quaternion(q) => {
            json!([
                f64::from(q.x),
                f64::from(q.y),
                f64::from(q.z),
                f64::from(q.w)
            ])
        }
        FieldValue::Uuid(u) => json!(u.to_string()),
        FieldValue::Bool(b) => json!(b),
        FieldValue::IpAddr(a) => json!(a.to_string()),
        FieldValue::IpPort(p) => json!(p),
        FieldValue::Fixed(b) | FieldValue::Variable(b) => json!(b),
        _ => unreachable!("a new FieldValue variant needs a comparison"),
    }
}

/// node-metaverse's value notation, normalised to ours.
fn theirs(v: &Value) -> Value {
    use serde_json::json;
    match v {
        Value::Object(o) if o.contains_key("mUUID") => o["mUUID"].clone(),
        Value::Object(o) if o.get("type") == Some(&json!("Buffer")) => o["data"].clone(),
        Value::Object(o) if o.contains_key("low") && o.contains_key("high") => {
            let low = o["low"].as_i64().unwrap() as u32;
            let high = o["high"].as_i64().unwrap() as u32;
            json!((u64::from(high) << 32) | u64::from(low))
        }
        Value::Object(o) if o.contains_key("values") => {
            let vals = o["values"].as_object().unwrap();
            let mut keys: Vec<&String> = vals.keys().collect();
            keys.sort();
            Value::Array(keys.into_iter().map(|k| vals[k].clone()).collect())
        }
        other => other.clone(),
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_u64(), y.as_u64()) {
            (Some(a), Some(b)) => a == b,
            // node-metaverse printed some F32s rounded past the float's own precision: compare
            // at F32 precision, which is what the wire carries.
            _ => x.as_f64().map(|v| v as f32) == y.as_f64().map(|v| v as f32),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| numbers_equal(a, b))
        }
        // node-metaverse prints U8 flags such as Audible as numbers and BOOL as booleans.
        (Value::Bool(x), Value::Number(y)) | (Value::Number(y), Value::Bool(x)) => {
            y.as_u64() == Some(u64::from(*x))
        }
        _ => a == b,
    }
}

#[test]
fn every_field_of_node_metaverse_decodes_equals_ours() {
    let Some(dir) = opensim_testkit::fixture_subdir("peer-packets") else {
        return;
    };
    let files = opensim_testkit::files_with_extension(&dir, "json");
    assert_eq!(files.len(), 20);
    let mut fields_compared = 0;
    for json_file in files {
        let expected: Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
        let wire = std::fs::read(json_file.with_extension("packet")).unwrap();
        let p = Packet::decode(&wire).unwrap();
        let ctx = json_file.display().to_string();
        let pk = &expected["packet"];
        assert_eq!(
            pk["packetFlags"].as_u64().unwrap(),
            u64::from(wire[0]),
            "{ctx}"
        );
        assert_eq!(
            pk["sequenceNumber"].as_u64().unwrap(),
            u64::from(p.sequence),
            "{ctx}"
        );
        let received: Vec<u64> = expected["receivedAcks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let ours_acks: Vec<u64> = p.acks.iter().map(u64::from).collect();
        assert_eq!(received, ours_acks, "{ctx}");
        let sent: Vec<u64> = expected["sentAcks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let should_ack: Vec<u64> = if p.reliable {
            vec![u64::from(p.sequence)]
        } else {
            vec![]
        };
        assert_eq!(sent, should_ack, "{ctx}");

        let msg = &pk["message"];
        assert_eq!(msg["name"].as_str().unwrap(), p.message.name(), "{ctx}");
        let id = p.message.id();
        let node_id = match id.frequency() {
            Frequency::High => u64::from(id.number()),
            Frequency::Medium => 0xFF00 | u64::from(id.number()),
            Frequency::Low => 0xFFFF_0000 | u64::from(id.number()),
            Frequency::Fixed => u64::from(id.number()),
        };
        assert_eq!(msg["id"].as_u64().unwrap(), node_id, "{ctx}");

        let mut ours_blocks = Collect::default();
        p.message.visit(&mut ours_blocks);
        let theirs_blocks = msg.as_object().unwrap();
        for (key, block) in theirs_blocks {
            if ["name", "messageFlags", "id"].contains(&key.as_str())
                || ours_blocks.blocks.contains_key(key)
            {
                continue;
            }
            // Second Life's template has blocks OpenSimulator's lacks (ImprovedInstantMessage's
            // EstateBlock): their bytes must be kept in `trailing`, not dropped.
            let values: Vec<u64> = block
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(
                p.trailing.len(),
                4 * values.len(),
                "{ctx}: trailing for {key}"
            );
            let first = u32::from_le_bytes(p.trailing[..4].try_into().unwrap());
            assert_eq!(u64::from(first), values[0], "{ctx}: {key}");
            fields_compared += values.len();
        }
        for (block, our_instances) in &ours_blocks.blocks {
            let our_instances_list = our_instances.as_array().unwrap();
            let Some(their) = theirs_blocks.get(block) else {
                // OpenSimulator's template adds MapBlockReply's trailing Size block, which
                // node-metaverse's template lacks; that datagram omits it (read as empty).
                assert!(
                    our_instances_list.is_empty(),
                    "{ctx}: node-metaverse has no block {block}"
                );
                continue;
            };
            let their_instances: Vec<&Value> = match their {
                Value::Array(a) => a.iter().collect(),
                single => vec![single],
            };
            let our_instances = our_instances.as_array().unwrap();
            assert_eq!(their_instances.len(), our_instances.len(), "{ctx}: {block}");
            for (o, t) in our_instances.iter().zip(their_instances) {
                for (field, ov) in o.as_object().unwrap() {
                    let tv = theirs(&t[field.as_str()]);
                    assert!(
                        numbers_equal(ov, &tv),
                        "{ctx}: {block}.{field}: ours {ov}, node-metaverse {tv}"
                    );
                    fields_compared += 1;
                }
            }
        }
    }
    assert!(fields_compared > 200, "compared {fields_compared} fields");
}
