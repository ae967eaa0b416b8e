//! `osn decode`: datagrams to JSON lines or a readable dump.

use std::fmt::Write as _;

use opensim_messages::{FieldValue, Message, Visitor, codec};
use opensim_packet::{FLAG_ACKS, FLAG_RELIABLE, FLAG_RESENT, FLAG_ZEROCODED, Packet};
use serde_json::{Map, Value, json};

/// Collects a message's blocks as JSON: every block an array of instances.
#[derive(Default)]
struct JsonBlocks {
    blocks: Map<String, Value>,
    current: &'static str,
}

impl Visitor for JsonBlocks {
    fn block(&mut self, name: &'static str, count: usize) {
        self.current = name;
        self.blocks
            .insert(name.to_string(), Value::Array(Vec::with_capacity(count)));
    }
    fn instance(&mut self, _index: usize) {
        if let Some(Value::Array(a)) = self.blocks.get_mut(self.current) {
            a.push(Value::Object(Map::new()));
        }
    }
    fn field(&mut self, name: &'static str, value: FieldValue<'_>) {
        if let Some(Value::Array(a)) = self.blocks.get_mut(self.current)
            && let Some(Value::Object(o)) = a.last_mut()
        {
            o.insert(name.to_string(), field_json(value));
        }
    }
}

fn float(f: f64) -> Value {
    // JSON has no NaN or infinity: those become null.
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// The JSON form of one field value (see the `osn decode --json` contract).
pub fn field_json(v: FieldValue<'_>) -> Value {
    match v {
        FieldValue::U8(x) => json!(x),
        FieldValue::U16(x) => json!(x),
        FieldValue::U32(x) => json!(x),
        FieldValue::U64(x) => json!(x),
        FieldValue::S8(x) => json!(x),
        FieldValue::S16(x) => json!(x),
        FieldValue::S32(x) => json!(x),
        FieldValue::S64(x) => json!(x),
        FieldValue::F32(x) => float(f64::from(x)),
        FieldValue::F64(x) => float(x),
        FieldValue::Vector3(v) => json!([
            float(f64::from(v.x)),
            float(f64::from(v.y)),
            float(f64::from(v.z))
        ]),
        FieldValue::Vector3d(v) => json!([float(v.x), float(v.y), float(v.z)]),
        FieldValue::Vector4(v) => json!([
            float(f64::from(v.x)),
            float(f64::from(v.y)),
            float(f64::from(v.z)),
            float(f64::from(v.w))
        ]),
        FieldValue::Quaternion(q) => json!([
            float(f64::from(q.x)),
            float(f64::from(q.y)),
            float(f64::from(q.z)),
            float(f64::from(q.w))
        ]),
        FieldValue::Uuid(u) => json!(u.hyphenated().to_string()),
        FieldValue::Bool(b) => json!(b),
        FieldValue::IpAddr(a) => json!(a.to_string()),
        FieldValue::IpPort(p) => json!(p),
        FieldValue::Fixed(b) | FieldValue::Variable(b) => json!(hex(b)),
        _ => Value::Null,
    }
}

/// The JSON object of one decoded datagram.
pub fn packet_json(file: &str, wire: &[u8], p: &Packet) -> Value {
    let flags = wire.first().copied().unwrap_or(0);
    let mut blocks = JsonBlocks::default();
    p.message.visit(&mut blocks);
    let id = p.message.id();
    json!({
        "file": file,
        "flags": {
            "zerocoded": flags & FLAG_ZEROCODED != 0,
            "reliable": flags & FLAG_RELIABLE != 0,
            "resent": flags & FLAG_RESENT != 0,
            "acks": flags & FLAG_ACKS != 0,
        },
        "sequence": p.sequence,
        "message": p.message.name(),
        "number": id.number(),
        "frequency": id.frequency().name(),
        "blocks": Value::Object(blocks.blocks),
        "acks": p.acks.iter().collect::<Vec<u32>>(),
        "trailing": hex(&p.trailing),
    })
}

/// Prints fields as indented text; Variable fields holding text are shown as text.
struct TextDump<'a> {
    out: &'a mut String,
}

impl Visitor for TextDump<'_> {
    fn block(&mut self, name: &'static str, count: usize) {
        let _ = writeln!(self.out, "  {name} ({count})");
    }
    fn instance(&mut self, index: usize) {
        let _ = writeln!(self.out, "    [{index}]");
    }
    fn field(&mut self, name: &'static str, value: FieldValue<'_>) {
        let shown = match value {
            FieldValue::Variable(b) if is_text(b) => format!("{:?}", codec::text(b)),
            FieldValue::Variable(b) | FieldValue::Fixed(b) => {
                format!("{} bytes: {}", b.len(), hex(b))
            }
            other => field_json(other).to_string(),
        };
        let _ = writeln!(self.out, "      {name}: {shown}");
    }
}

fn is_text(b: &[u8]) -> bool {
    let b = b.strip_suffix(&[0]).unwrap_or(b);
    !b.is_empty()
        && std::str::from_utf8(b).is_ok_and(|s| {
            s.chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t' || c == '\r')
        })
}

/// The readable dump of one decoded datagram.
pub fn packet_text(file: &str, wire: &[u8], p: &Packet) -> String {
    let mut out = String::new();
    let flags = wire.first().copied().unwrap_or(0);
    let mut names = Vec::new();
    for (bit, name) in [
        (FLAG_ZEROCODED, "zerocoded"),
        (FLAG_RELIABLE, "reliable"),
        (FLAG_RESENT, "resent"),
        (FLAG_ACKS, "acks"),
    ] {
        if flags & bit != 0 {
            names.push(name);
        }
    }
    let _ = writeln!(
        out,
        "{file}: {} ({}) seq {} [{}]",
        p.message.name(),
        p.message.id(),
        p.sequence,
        names.join(", ")
    );
    if let Message::Unknown(u) = &p.message {
        let _ = writeln!(out, "  body: {}", hex(&u.body));
    }
    p.message.visit(&mut TextDump { out: &mut out });
    if !p.acks.is_empty() {
        let _ = writeln!(out, "  acks: {:?}", p.acks.iter().collect::<Vec<_>>());
    }
    if !p.trailing.is_empty() {
        let _ = writeln!(out, "  trailing: {}", hex(&p.trailing));
    }
    out
}
