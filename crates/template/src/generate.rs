//! The code generator: from a [`Template`] to the Rust source of `opensim-messages`.
//!
//! The output targets the hand-written runtime of that crate (`crate::codec` for the field
//! codecs, the `MessageType` trait, `Visitor`, `MessageId`). It is plain text laid out close to
//! rustfmt's style; `cargo xtask codegen` pipes it through rustfmt before writing.

use std::fmt::Write as _;

use heck::{ToSnakeCase, ToUpperCamelCase};

use crate::model::{
    BlockDef, BlockKind, Deprecation, Encoding, FieldDef, FieldType, Frequency, MessageDef,
    Template, Trust,
};

/// One output file, with its path relative to the generated folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path below `crates/messages/src/generated/`, for example `high.rs`.
    pub path: String,
    /// The Rust source.
    pub contents: String,
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

fn snake(name: &str) -> String {
    let s = name.to_snake_case();
    if RUST_KEYWORDS.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

fn camel(name: &str) -> String {
    let s = name.to_upper_camel_case();
    if s == "Self" { format!("{s}_") } else { s }
}

/// Keeps template prose from being read as markdown links or HTML by rustdoc.
fn escape_doc(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    // Template comments align with tabs; rustdoc wants single spaces.
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    for c in line.chars() {
        if matches!(c, '[' | ']' | '<' | '>' | '`' | '*' | '_' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_list_item(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("- ") || t.starts_with("* ") || t.starts_with("+ ")
}

fn docs(out: &mut String, indent: &str, lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        // Prose after a list would otherwise be read as part of the last item.
        if i > 0 && is_list_item(&lines[i - 1]) && !is_list_item(line) && !line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        }
        if line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {}", escape_doc(line));
        }
    }
}

/// The largest message struct kept inline in the `Message` enum, in bytes.
///
/// Every variant costs the enum's full size on each move of a `Message` or `Packet`; the few
/// messages larger than this (region and parcel descriptions, rare and already allocating)
/// are boxed so that the common ones, `AgentUpdate` included, move cheaply and decode without
/// allocation.
const MAX_INLINE_MESSAGE: usize = 128;

/// The in-memory size and alignment of a field's Rust type.
fn rust_layout(ty: FieldType) -> (usize, usize) {
    match ty {
        FieldType::U8 | FieldType::S8 | FieldType::BOOL => (1, 1),
        FieldType::U16 | FieldType::S16 | FieldType::IPPORT => (2, 2),
        FieldType::U32 | FieldType::S32 | FieldType::F32 | FieldType::IPADDR => (4, 4),
        FieldType::U64 | FieldType::S64 | FieldType::F64 => (8, 8),
        FieldType::LLVector3 => (12, 4),
        FieldType::LLVector3d => (24, 8),
        // glam's Vec4 and Quat are 16-byte aligned SIMD types.
        FieldType::LLVector4 | FieldType::LLQuaternion => (16, 16),
        FieldType::LLUUID => (16, 1),
        FieldType::Variable1 | FieldType::Variable2 => (32, 8),
        FieldType::Fixed(n) => (usize::from(n), 1),
    }
}

/// An estimate of `size_of` of a message struct (fields reordered, as rustc does, so that
/// padding only rounds the total up to the alignment).
fn message_size(m: &MessageDef) -> usize {
    let (mut size, mut align) = (0usize, 1usize);
    for b in &m.blocks {
        let (mut bsize, mut balign) = (0usize, 1usize);
        for f in &b.fields {
            let (fs, fa) = rust_layout(f.ty);
            bsize += fs;
            balign = balign.max(fa);
        }
        let bsize = bsize.div_ceil(balign) * balign;
        match b.kind {
            BlockKind::Single => {
                size += bsize;
                align = align.max(balign);
            }
            BlockKind::Multiple(n) => {
                size += usize::from(n) * bsize;
                align = align.max(balign);
            }
            // `Blocks<T>` holds one instance inline: an instance of up to 16 bytes fits beside
            // the `Vec`'s niche; a larger one adds a tag word to its own size.
            BlockKind::Variable => {
                size += if bsize <= 16 {
                    24
                } else {
                    bsize + balign.max(8)
                };
                align = align.max(balign).max(8);
            }
        }
    }
    size.div_ceil(align) * align
}

/// Whether the block's instances are built from one fixed-size run of bytes (`from_run`).
fn has_run_decoder(b: &BlockDef) -> bool {
    !b.fields.is_empty() && b.is_fixed_size()
}

/// Reads a run of fixed-size fields: the `r.fixed_run` call that bounds-checks them all at
/// once, and each field's name with its expression over the run's bytes, bound to `bytes`.
fn fixed_run(fields: &[&FieldDef], bytes: &str) -> (String, Vec<(String, String)>) {
    let sizes: Vec<usize> = fields.iter().filter_map(|f| f.ty.fixed_size()).collect();
    let list: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let read = format!(
        "r.fixed_run::<{}>(&[{}])?",
        sizes.iter().sum::<usize>(),
        list.join(", ")
    );
    let mut at = 0;
    let exprs = fields
        .iter()
        .map(|f| {
            let e = (snake(&f.name), run_expr(f.ty, bytes, at));
            at += f.ty.fixed_size().unwrap_or(0);
            e
        })
        .collect();
    (read, exprs)
}

/// Whether the `Message` variant of `m` holds it in a `Box`.
fn is_boxed(m: &MessageDef) -> bool {
    message_size(m) > MAX_INLINE_MESSAGE
}

fn rust_type(ty: FieldType) -> String {
    match ty {
        FieldType::U8 => "u8".into(),
        FieldType::U16 => "u16".into(),
        FieldType::U32 => "u32".into(),
        FieldType::U64 => "u64".into(),
        FieldType::S8 => "i8".into(),
        FieldType::S16 => "i16".into(),
        FieldType::S32 => "i32".into(),
        FieldType::S64 => "i64".into(),
        FieldType::F32 => "f32".into(),
        FieldType::F64 => "f64".into(),
        FieldType::LLVector3 => "::glam::Vec3".into(),
        FieldType::LLVector3d => "::glam::DVec3".into(),
        FieldType::LLVector4 => "::glam::Vec4".into(),
        FieldType::LLQuaternion => "::glam::Quat".into(),
        FieldType::LLUUID => "::uuid::Uuid".into(),
        FieldType::BOOL => "bool".into(),
        FieldType::IPADDR => "::std::net::Ipv4Addr".into(),
        FieldType::IPPORT => "u16".into(),
        FieldType::Variable1 | FieldType::Variable2 => "::bytes::Bytes".into(),
        FieldType::Fixed(n) => format!("[u8; {n}]"),
    }
}

/// The `Reader` method that decodes a field of this type.
fn read_call(ty: FieldType) -> String {
    match ty {
        FieldType::U8 => "r.u8()?".into(),
        FieldType::U16 => "r.u16()?".into(),
        FieldType::U32 => "r.u32()?".into(),
        FieldType::U64 => "r.u64()?".into(),
        FieldType::S8 => "r.i8()?".into(),
        FieldType::S16 => "r.i16()?".into(),
        FieldType::S32 => "r.i32()?".into(),
        FieldType::S64 => "r.i64()?".into(),
        FieldType::F32 => "r.f32()?".into(),
        FieldType::F64 => "r.f64()?".into(),
        FieldType::LLVector3 => "r.vec3()?".into(),
        FieldType::LLVector3d => "r.dvec3()?".into(),
        FieldType::LLVector4 => "r.vec4()?".into(),
        FieldType::LLQuaternion => "r.quat()?".into(),
        FieldType::LLUUID => "r.uuid()?".into(),
        FieldType::BOOL => "r.bool()?".into(),
        FieldType::IPADDR => "r.ipaddr()?".into(),
        FieldType::IPPORT => "r.ipport()?".into(),
        FieldType::Variable1 => "r.var1()?".into(),
        FieldType::Variable2 => "r.var2()?".into(),
        FieldType::Fixed(_) => "r.fixed()?".into(),
    }
}

/// The expression that decodes a fixed-size field at offset `at` of the run `b`, whose length
/// was checked once for all its fields.
fn run_expr(ty: FieldType, b: &str, at: usize) -> String {
    match ty {
        FieldType::U8 => format!("{b}[{at}]"),
        FieldType::S8 => format!("i8::from_le_bytes([{b}[{at}]])"),
        FieldType::BOOL => format!("{b}[{at}] != 0"),
        FieldType::U16
        | FieldType::U32
        | FieldType::U64
        | FieldType::S16
        | FieldType::S32
        | FieldType::S64
        | FieldType::F32
        | FieldType::F64 => format!("{}::from_le_bytes(codec::at({b}, {at}))", rust_type(ty)),
        FieldType::LLVector3 => format!("codec::vec3_at({b}, {at})"),
        FieldType::LLVector3d => format!("codec::dvec3_at({b}, {at})"),
        FieldType::LLVector4 => format!("codec::vec4_at({b}, {at})"),
        FieldType::LLQuaternion => format!("codec::quat_at({b}, {at})"),
        FieldType::LLUUID => format!("::uuid::Uuid::from_bytes(codec::at({b}, {at}))"),
        FieldType::IPADDR => format!("codec::ipaddr_at({b}, {at})"),
        FieldType::IPPORT => format!("u16::from_be_bytes(codec::at({b}, {at}))"),
        FieldType::Fixed(_) => format!("codec::at({b}, {at})"),
        // Variable fields are never part of a run.
        FieldType::Variable1 | FieldType::Variable2 => read_call(ty),
    }
}

/// Whether decoding a field of this type calls into `codec`.
fn decode_uses_codec(ty: FieldType) -> bool {
    !matches!(
        ty,
        FieldType::U8
            | FieldType::S8
            | FieldType::BOOL
            | FieldType::Variable1
            | FieldType::Variable2
    )
}

/// The statement that encodes `self.{name}` of this type into `w`.
fn write_stmt(ty: FieldType, name: &str) -> String {
    match ty {
        FieldType::U8 => format!("w.put_u8(self.{name});"),
        FieldType::U16 => format!("w.put_u16_le(self.{name});"),
        FieldType::U32 => format!("w.put_u32_le(self.{name});"),
        FieldType::U64 => format!("w.put_u64_le(self.{name});"),
        FieldType::S8 => format!("w.put_i8(self.{name});"),
        FieldType::S16 => format!("w.put_i16_le(self.{name});"),
        FieldType::S32 => format!("w.put_i32_le(self.{name});"),
        FieldType::S64 => format!("w.put_i64_le(self.{name});"),
        FieldType::F32 => format!("w.put_f32_le(self.{name});"),
        FieldType::F64 => format!("w.put_f64_le(self.{name});"),
        FieldType::LLVector3 => format!("codec::put_vec3(w, self.{name});"),
        FieldType::LLVector3d => format!("codec::put_dvec3(w, self.{name});"),
        FieldType::LLVector4 => format!("codec::put_vec4(w, self.{name});"),
        FieldType::LLQuaternion => format!("codec::put_quat(w, self.{name});"),
        FieldType::LLUUID => format!("w.put_slice(self.{name}.as_bytes());"),
        FieldType::BOOL => format!("w.put_u8(u8::from(self.{name}));"),
        FieldType::IPADDR => format!("w.put_slice(&self.{name}.octets());"),
        FieldType::IPPORT => format!("w.put_u16(self.{name});"),
        FieldType::Variable1 => format!("codec::put_var1(w, &self.{name})?;"),
        FieldType::Variable2 => format!("codec::put_var2(w, &self.{name})?;"),
        FieldType::Fixed(_) => format!("w.put_slice(&self.{name});"),
    }
}

/// The `FieldValue` expression describing `self.{name}`.
fn value_expr(ty: FieldType, name: &str) -> String {
    match ty {
        FieldType::U8 => format!("FieldValue::U8(self.{name})"),
        FieldType::U16 => format!("FieldValue::U16(self.{name})"),
        FieldType::U32 => format!("FieldValue::U32(self.{name})"),
        FieldType::U64 => format!("FieldValue::U64(self.{name})"),
        FieldType::S8 => format!("FieldValue::S8(self.{name})"),
        FieldType::S16 => format!("FieldValue::S16(self.{name})"),
        FieldType::S32 => format!("FieldValue::S32(self.{name})"),
        FieldType::S64 => format!("FieldValue::S64(self.{name})"),
        FieldType::F32 => format!("FieldValue::F32(self.{name})"),
        FieldType::F64 => format!("FieldValue::F64(self.{name})"),
        FieldType::LLVector3 => format!("FieldValue::Vector3(self.{name})"),
        FieldType::LLVector3d => format!("FieldValue::Vector3d(self.{name})"),
        FieldType::LLVector4 => format!("FieldValue::Vector4(self.{name})"),
        FieldType::LLQuaternion => format!("FieldValue::Quaternion(self.{name})"),
        FieldType::LLUUID => format!("FieldValue::Uuid(self.{name})"),
        FieldType::BOOL => format!("FieldValue::Bool(self.{name})"),
        FieldType::IPADDR => format!("FieldValue::IpAddr(self.{name})"),
        FieldType::IPPORT => format!("FieldValue::IpPort(self.{name})"),
        FieldType::Variable1 | FieldType::Variable2 => {
            format!("FieldValue::Variable(&self.{name})")
        }
        FieldType::Fixed(_) => format!("FieldValue::Fixed(&self.{name})"),
    }
}

/// The proptest strategy expression for a field of this type.
fn strategy_expr(ty: FieldType) -> String {
    match ty {
        FieldType::F32 => "strategy::f32()".into(),
        FieldType::F64 => "strategy::f64()".into(),
        FieldType::LLVector3 => "strategy::vec3()".into(),
        FieldType::LLVector3d => "strategy::dvec3()".into(),
        FieldType::LLVector4 => "strategy::vec4()".into(),
        FieldType::LLQuaternion => "strategy::quat()".into(),
        FieldType::LLUUID => "strategy::uuid()".into(),
        FieldType::IPADDR => "strategy::ipaddr()".into(),
        FieldType::Variable1 => "strategy::var1()".into(),
        FieldType::Variable2 => "strategy::var2()".into(),
        FieldType::Fixed(_) => "strategy::fixed()".into(),
        other => format!("any::<{}>()", rust_type(other)),
    }
}

const HEADER: &str =
    "// @generated by `cargo xtask codegen` from message_template.msg: do not edit by hand.\n";

/// Generates every file of `crates/messages/src/generated/` from a template.
pub fn generate(template: &Template) -> Vec<GeneratedFile> {
    let mut files = vec![GeneratedFile {
        path: "mod.rs".into(),
        contents: gen_mod(template),
    }];
    for freq in [
        Frequency::High,
        Frequency::Medium,
        Frequency::Low,
        Frequency::Fixed,
    ] {
        let mut out = String::new();
        out.push_str(HEADER);
        let _ = writeln!(out, "//! The {} frequency messages.\n", freq.keyword());
        let messages: Vec<&MessageDef> = template
            .messages
            .iter()
            .filter(|m| m.frequency == freq)
            .collect();
        let counts = messages
            .iter()
            .any(|m| m.blocks.iter().any(|b| b.kind == BlockKind::Variable));
        let codec = if counts { "self, " } else { "" };
        out.push_str("use bytes::BufMut;\n\n");
        let _ = writeln!(
            out,
            "use crate::codec::{{{codec}DecodeError, EncodeError, Reader, Visitor}};"
        );
        let blocks = if counts { "Blocks, " } else { "" };
        let _ = writeln!(
            out,
            "use crate::{{{blocks}Deprecation, Frequency, MessageId, MessageType, Trust}};"
        );
        for m in messages {
            out.push('\n');
            gen_message(&mut out, m);
        }
        files.push(GeneratedFile {
            path: format!("{}.rs", freq.keyword().to_lowercase()),
            contents: out,
        });
    }
    files.push(GeneratedFile {
        path: "arbitrary.rs".into(),
        contents: gen_arbitrary(template),
    });
    files
}

fn frequency_path(f: Frequency) -> &'static str {
    match f {
        Frequency::High => "Frequency::High",
        Frequency::Medium => "Frequency::Medium",
        Frequency::Low => "Frequency::Low",
        Frequency::Fixed => "Frequency::Fixed",
    }
}

/// The dispatch table of each frequency, by name.
const FREQUENCY_TABLES: [(Frequency, &str); 4] = [
    (Frequency::High, "DECODE_HIGH"),
    (Frequency::Medium, "DECODE_MEDIUM"),
    (Frequency::Low, "DECODE_LOW"),
    (Frequency::Fixed, "DECODE_FIXED"),
];

/// The number that a frequency's dispatch table starts at: 0, or the lowest Fixed number
/// (Fixed numbers sit just under 2^32).
fn dispatch_first(sorted: &[&MessageDef], f: Frequency) -> u32 {
    if f == Frequency::Fixed {
        sorted
            .iter()
            .filter(|m| m.frequency == f)
            .map(|m| m.number)
            .min()
            .unwrap_or(0)
    } else {
        0
    }
}

fn number_literal(m: &MessageDef) -> String {
    if m.frequency == Frequency::Fixed {
        format!("0x{:08X}", m.number)
    } else {
        m.number.to_string()
    }
}

fn block_type_path(m: &MessageDef, b: &BlockDef) -> String {
    format!("{}::{}", snake(&m.name), camel(&b.name))
}

fn block_field_type(m: &MessageDef, b: &BlockDef) -> String {
    let t = block_type_path(m, b);
    match b.kind {
        BlockKind::Single => t,
        BlockKind::Multiple(n) => format!("[{t}; {n}]"),
        BlockKind::Variable => format!("Blocks<{t}>"),
    }
}

fn gen_message(out: &mut String, m: &MessageDef) {
    let ty = camel(&m.name);
    let module = snake(&m.name);
    if !m.blocks.is_empty() {
        let _ = writeln!(out, "/// The blocks of [`{ty}`].");
        let _ = writeln!(out, "pub mod {module} {{");
        let fields = m.blocks.iter().any(|b| !b.fields.is_empty());
        let helpers = m.blocks.iter().flat_map(|b| &b.fields).any(|f| {
            matches!(
                f.ty,
                FieldType::LLVector3
                    | FieldType::LLVector3d
                    | FieldType::LLVector4
                    | FieldType::LLQuaternion
                    | FieldType::Variable1
                    | FieldType::Variable2
            ) || decode_uses_codec(f.ty)
        });
        let codec = if helpers { "self, " } else { "" };
        let value = if fields { "FieldValue, " } else { "" };
        // Only a block with a `decode` of its own reads through a `Reader`.
        let reads = m
            .blocks
            .iter()
            .any(|b| b.kind != BlockKind::Variable || !has_run_decoder(b));
        let (error, reader) = if reads {
            ("DecodeError, ", "Reader, ")
        } else {
            ("", "")
        };
        out.push_str("    use bytes::BufMut;\n\n");
        let _ = writeln!(
            out,
            "    use crate::codec::{{{codec}{error}EncodeError, {value}{reader}Visitor}};"
        );
        for b in &m.blocks {
            out.push('\n');
            gen_block(out, m, b);
        }
        out.push_str("}\n\n");
    }

    // The message struct.
    if m.docs.is_empty() {
        let _ = writeln!(out, "/// The `{}` message.", m.name);
    } else {
        docs(out, "", &m.docs);
    }
    let _ = writeln!(out, "///");
    let trust = match m.trust {
        Trust::Trusted => "Trusted",
        Trust::NotTrusted => "NotTrusted",
    };
    let enc = match m.encoding {
        Encoding::Zerocoded => "Zerocoded",
        Encoding::Unencoded => "Unencoded",
    };
    let dep = m
        .deprecation
        .map(|d| format!(" {}", d.keyword()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "/// Template: `{} {} {} {trust} {enc}{dep}`.",
        m.name,
        m.frequency.keyword(),
        number_literal(m)
    );
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq, Default)]");
    if m.blocks.is_empty() {
        let _ = writeln!(out, "pub struct {ty};\n");
    } else {
        let _ = writeln!(out, "pub struct {ty} {{");
        for b in &m.blocks {
            let kind = match b.kind {
                BlockKind::Single => String::new(),
                BlockKind::Multiple(n) => format!(", exactly {n} times"),
                BlockKind::Variable => ", 0 to 255 times".to_string(),
            };
            if b.docs.is_empty() {
                let _ = writeln!(out, "    /// The `{}` block{kind}.", b.name);
            } else {
                docs(out, "    ", &b.docs);
                let _ = writeln!(out, "    ///");
                let _ = writeln!(out, "    /// The `{}` block{kind}.", b.name);
            }
            let _ = writeln!(
                out,
                "    pub {}: {},",
                snake(&b.name),
                block_field_type(m, b)
            );
        }
        out.push_str("}\n\n");
    }

    // The trait implementation.
    let _ = writeln!(out, "impl MessageType for {ty} {{");
    let _ = writeln!(out, "    const NAME: &'static str = \"{}\";", m.name);
    let _ = writeln!(
        out,
        "    const ID: MessageId = MessageId::new({}, {});",
        frequency_path(m.frequency),
        number_literal(m)
    );
    let _ = writeln!(out, "    const TRUST: Trust = Trust::{trust};");
    let _ = writeln!(
        out,
        "    const ZEROCODED: bool = {};",
        m.encoding == Encoding::Zerocoded
    );
    let dep_expr = match m.deprecation {
        None => "None".to_string(),
        Some(Deprecation::Deprecated) => "Some(Deprecation::Deprecated)".into(),
        Some(Deprecation::UdpDeprecated) => "Some(Deprecation::UdpDeprecated)".into(),
        Some(Deprecation::UdpBlackListed) => "Some(Deprecation::UdpBlackListed)".into(),
    };
    let _ = writeln!(
        out,
        "    const DEPRECATION: Option<Deprecation> = {dep_expr};"
    );
    let _ = writeln!(out, "    const FIXED_SIZE: bool = {};\n", m.is_fixed_size());

    // decode_body
    if m.blocks.is_empty() {
        out.push_str("    fn decode_body(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {\n        Ok(Self)\n    }\n\n");
    } else {
        // Inlined into its one caller, the dispatch's `decode_to`.
        out.push_str("    #[inline]\n    fn decode_body(r: &mut Reader<'_>) -> Result<Self, DecodeError> {\n        Ok(Self {\n");
        for b in &m.blocks {
            let path = block_type_path(m, b);
            let expr = match b.kind {
                BlockKind::Single => format!("{path}::decode(r)?"),
                BlockKind::Multiple(_) => format!("r.array({path}::decode)?"),
                BlockKind::Variable if has_run_decoder(b) => format!(
                    "r.fixed_blocks::<{}, _>({path}::from_run)?",
                    b.min_instance_size()
                ),
                BlockKind::Variable => format!("r.blocks({path}::MIN_SIZE, {path}::decode)?"),
            };
            let _ = writeln!(out, "            {}: {expr},", snake(&b.name));
        }
        out.push_str("        })\n    }\n\n");
    }

    // encode_body
    let w = if m.blocks.is_empty() { "_w" } else { "w" };
    let _ = writeln!(
        out,
        "    fn encode_body<B: BufMut + ?Sized>(&self, {w}: &mut B) -> Result<(), EncodeError> {{"
    );
    for b in &m.blocks {
        let name = snake(&b.name);
        match b.kind {
            BlockKind::Single => {
                let _ = writeln!(out, "        self.{name}.encode(w)?;");
            }
            BlockKind::Multiple(_) => {
                let _ = writeln!(
                    out,
                    "        for block in &self.{name} {{\n            block.encode(w)?;\n        }}"
                );
            }
            BlockKind::Variable => {
                let _ = writeln!(
                    out,
                    "        codec::put_count(w, self.{name}.len())?;\n        for block in &self.{name} {{\n            block.encode(w)?;\n        }}"
                );
            }
        }
    }
    out.push_str("        Ok(())\n    }\n\n");

    // encoded_len
    out.push_str("    fn encoded_len(&self) -> usize {\n");
    if m.blocks.is_empty() {
        out.push_str("        0\n");
    } else {
        let parts: Vec<String> = m
            .blocks
            .iter()
            .map(|b| {
                let name = snake(&b.name);
                match b.kind {
                    BlockKind::Single => format!("self.{name}.encoded_len()"),
                    BlockKind::Multiple(_) => {
                        format!("self.{name}.iter().map(|b| b.encoded_len()).sum::<usize>()")
                    }
                    BlockKind::Variable => {
                        format!("1 + self.{name}.iter().map(|b| b.encoded_len()).sum::<usize>()")
                    }
                }
            })
            .collect();
        let _ = writeln!(out, "        {}", parts.join("\n            + "));
    }
    out.push_str("    }\n\n");

    // visit
    let v = if m.blocks.is_empty() { "_v" } else { "v" };
    let _ = writeln!(
        out,
        "    fn visit<V: Visitor + ?Sized>(&self, {v}: &mut V) {{"
    );
    for b in &m.blocks {
        let name = snake(&b.name);
        match b.kind {
            BlockKind::Single => {
                let _ = writeln!(
                    out,
                    "        v.block(\"{}\", 1);\n        v.instance(0);\n        self.{name}.visit(v);",
                    b.name
                );
            }
            BlockKind::Multiple(_) | BlockKind::Variable => {
                let _ = writeln!(
                    out,
                    "        v.block(\"{}\", self.{name}.len());\n        for (i, block) in self.{name}.iter().enumerate() {{\n            v.instance(i);\n            block.visit(v);\n        }}",
                    b.name
                );
            }
        }
    }
    out.push_str("    }\n}\n");
}

fn gen_block(out: &mut String, m: &MessageDef, b: &BlockDef) {
    let ty = camel(&b.name);
    if b.docs.is_empty() {
        let _ = writeln!(out, "    /// The `{}` block of `{}`.", b.name, m.name);
    } else {
        docs(out, "    ", &b.docs);
        let _ = writeln!(out, "    ///");
        let _ = writeln!(out, "    /// The `{}` block of `{}`.", b.name, m.name);
    }
    // Ipv4Addr has no Default, so blocks holding one get a written-out impl.
    let manual_default = b.fields.iter().any(|f| f.ty == FieldType::IPADDR);
    if manual_default {
        let _ = writeln!(out, "    #[derive(Debug, Clone, PartialEq)]");
    } else {
        let _ = writeln!(out, "    #[derive(Debug, Clone, PartialEq, Default)]");
    }
    let _ = writeln!(out, "    pub struct {ty} {{");
    for f in &b.fields {
        field_doc(out, f);
        let _ = writeln!(out, "        pub {}: {},", snake(&f.name), rust_type(f.ty));
    }
    out.push_str("    }\n\n");
    if manual_default {
        let _ = writeln!(
            out,
            "    impl Default for {ty} {{\n        fn default() -> Self {{\n            Self {{"
        );
        for f in &b.fields {
            let value = if f.ty == FieldType::IPADDR {
                "::std::net::Ipv4Addr::UNSPECIFIED"
            } else {
                "Default::default()"
            };
            let _ = writeln!(out, "                {}: {value},", snake(&f.name));
        }
        out.push_str("            }\n        }\n    }\n\n");
    }

    let fixed: usize = b.fields.iter().filter_map(|f| f.ty.fixed_size()).sum();
    let _ = writeln!(out, "    impl {ty} {{");
    let _ = writeln!(
        out,
        "        /// The fewest bytes one instance takes on the wire.\n        pub const MIN_SIZE: usize = {};\n",
        b.min_instance_size()
    );
    let r = if b.fields.is_empty() { "_r" } else { "r" };
    if has_run_decoder(b) {
        // A block of fixed-size fields is built from its bytes alone, so that a Variable
        // block of them is read with one bounds check for all its instances.
        let fields: Vec<&FieldDef> = b.fields.iter().collect();
        let (read, exprs) = fixed_run(&fields, "b0");
        // A Variable block of them only ever decodes through `Reader::fixed_blocks`.
        if b.kind != BlockKind::Variable {
            let _ = writeln!(
                out,
                "        pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {{\n            Ok(Self::from_run({read}))\n        }}\n"
            );
        }
        let _ = writeln!(
            out,
            "        #[inline(always)]\n        pub(crate) fn from_run(b0: &[u8; {fixed}]) -> Self {{\n            Self {{"
        );
        for (name, expr) in &exprs {
            let _ = writeln!(out, "                {name}: {expr},");
        }
        out.push_str("            }\n        }\n\n");
    } else {
        let _ = writeln!(
            out,
            "        pub(crate) fn decode({r}: &mut Reader<'_>) -> Result<Self, DecodeError> {{"
        );
        // Consecutive fixed-size fields are read as one run with a single bounds check; Variable
        // fields in between are read in wire order into locals.
        let mut exprs = Vec::new();
        let mut run: Vec<&FieldDef> = Vec::new();
        let mut runs = 0;
        let flush = |out: &mut String,
                     run: &mut Vec<&FieldDef>,
                     runs: &mut usize,
                     exprs: &mut Vec<(String, String)>| {
            if run.is_empty() {
                return;
            }
            let name = format!("b{runs}");
            *runs += 1;
            let (read, run_exprs) = fixed_run(run, &name);
            let _ = writeln!(out, "            let {name} = {read};");
            exprs.extend(run_exprs);
            run.clear();
        };
        for f in &b.fields {
            if f.ty.fixed_size().is_some() {
                run.push(f);
            } else {
                flush(out, &mut run, &mut runs, &mut exprs);
                let local = format!("v_{}", snake(&f.name));
                let _ = writeln!(out, "            let {local} = {};", read_call(f.ty));
                exprs.push((snake(&f.name), local));
            }
        }
        flush(out, &mut run, &mut runs, &mut exprs);
        out.push_str("            Ok(Self {\n");
        for (name, expr) in &exprs {
            let _ = writeln!(out, "                {name}: {expr},");
        }
        out.push_str("            })\n        }\n\n");
    }

    let w = if b.fields.is_empty() { "_w" } else { "w" };
    let _ = writeln!(
        out,
        "        pub(crate) fn encode<B: BufMut + ?Sized>(&self, {w}: &mut B) -> Result<(), EncodeError> {{"
    );
    for f in &b.fields {
        let _ = writeln!(out, "            {}", write_stmt(f.ty, &snake(&f.name)));
    }
    out.push_str("            Ok(())\n        }\n\n");

    out.push_str("        pub(crate) fn encoded_len(&self) -> usize {\n");
    let mut parts = Vec::new();
    if fixed > 0 || b.is_fixed_size() {
        parts.push(fixed.to_string());
    }
    for f in &b.fields {
        match f.ty {
            FieldType::Variable1 => parts.push(format!("1 + self.{}.len()", snake(&f.name))),
            FieldType::Variable2 => parts.push(format!("2 + self.{}.len()", snake(&f.name))),
            _ => {}
        }
    }
    let _ = writeln!(out, "            {}", parts.join(" + "));
    out.push_str("        }\n\n");

    let v = if b.fields.is_empty() { "_v" } else { "v" };
    let _ = writeln!(
        out,
        "        pub(crate) fn visit<V: Visitor + ?Sized>(&self, {v}: &mut V) {{"
    );
    for f in &b.fields {
        let _ = writeln!(
            out,
            "            v.field(\"{}\", {});",
            f.name,
            value_expr(f.ty, &snake(&f.name))
        );
    }
    out.push_str("        }\n    }\n");
}

fn field_doc(out: &mut String, f: &FieldDef) {
    let ty = f.ty.keyword();
    if f.docs.is_empty() {
        let _ = writeln!(out, "        /// `{}` ({ty}).", f.name);
    } else {
        docs(out, "        ", &f.docs);
        let _ = writeln!(out, "        ///");
        let _ = writeln!(out, "        /// `{}` ({ty}).", f.name);
    }
}

fn gen_mod(template: &Template) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    let _ = writeln!(
        out,
        "//! Every message of the template (version {}), as Rust types.\n",
        template.version
    );
    out.push_str("mod fixed;\nmod high;\nmod low;\nmod medium;\n\n#[cfg(feature = \"arbitrary\")]\npub(crate) mod arbitrary;\n\n");
    out.push_str("pub use fixed::*;\npub use high::*;\npub use low::*;\npub use medium::*;\n\n");
    out.push_str("use bytes::BufMut;\n\nuse crate::codec::{DecodeError, EncodeError, Reader, Visitor};\nuse crate::{Frequency, MessageId, MessageInfo, MessageType, UnknownMessage};\n\n");

    let _ = writeln!(
        out,
        "/// The version line of the template this code was generated from.\npub const TEMPLATE_VERSION: &str = \"{}\";\n",
        template.version
    );

    // Sorted by (frequency, number) so that lookups can binary-search.
    let mut sorted: Vec<&MessageDef> = template.messages.iter().collect();
    sorted.sort_by_key(|m| (m.frequency, m.number));
    // Each frequency's dispatch table: its name and the number it starts at.
    let tables: Vec<(Frequency, &str, u32)> = FREQUENCY_TABLES
        .iter()
        .map(|&(f, name)| (f, name, dispatch_first(&sorted, f)))
        .collect();

    // The enum.
    out.push_str("/// Any message of the template, or one the template does not know.\n");
    let _ = write!(
        out,
        "///\n/// Messages larger than {MAX_INLINE_MESSAGE} bytes are boxed (their variant holds a `Box`), so\n/// that the enum, moved with every packet, stays small.\n#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub enum Message {{\n"
    );
    for m in &template.messages {
        let ty = camel(&m.name);
        let held = if is_boxed(m) {
            format!("Box<{ty}>")
        } else {
            ty.clone()
        };
        let _ = writeln!(
            out,
            "    /// `{}` ({} {}).\n    {ty}({held}),",
            m.name,
            m.frequency.keyword(),
            number_literal(m),
        );
    }
    out.push_str("    /// A message number the template does not define, kept with its raw body.\n    Unknown(UnknownMessage),\n}\n\n");

    // The table.
    out.push_str("/// Every message of the template, sorted by frequency then number.\npub static MESSAGES: &[MessageInfo] = &[\n");
    for m in &sorted {
        let ty = camel(&m.name);
        let _ = writeln!(out, "    MessageInfo::of::<{ty}>(),");
    }
    out.push_str("];\n\n");

    // A message without blocks is what decoders put in a fresh `Message` before decoding
    // into it; replacing one needs no drop, and skipping it saves a jump through the drop glue
    // of every variant per decode.
    let blank = template
        .messages
        .iter()
        .find(|m| m.name == "CloseCircuit" && m.blocks.is_empty());
    out.push_str("impl Message {\n");
    // decode
    out.push_str("    /// Decodes the body of the message numbered `id`; an unknown number gives [`Message::Unknown`] with the remaining bytes.\n");
    out.push_str("    ///\n    /// # Errors\n    /// When the body is shorter than the template requires, or a count or length does not fit.\n");
    out.push_str(
        "    pub fn decode(id: MessageId, r: &mut Reader<'_>) -> Result<Self, DecodeError> {\n",
    );
    // Through `decode_in_place`, so that each message's decoder is inlined into one caller only.
    let placeholder = if blank.is_some() {
        "Self::CloseCircuit(CloseCircuit)"
    } else {
        "Self::Unknown(UnknownMessage { id, body: bytes::Bytes::new() })"
    };
    let _ = write!(
        out,
        "        let mut message = {placeholder};\n        message.decode_in_place(id, r)?;\n        Ok(message)\n    }}\n\n"
    );
    out.push_str("    /// Decodes the body of the message numbered `id` into `self`, replacing its value: the\n    /// same as [`Message::decode`], without moving the large enum around (a packet decoder\n    /// builds its packet once and decodes the message in place).\n    ///\n    /// On error `self` is left unchanged.\n    ///\n    /// # Errors\n    /// As [`Message::decode`].\n");
    out.push_str(
        "    #[inline]\n    pub fn decode_in_place(&mut self, id: MessageId, r: &mut Reader<'_>) -> Result<(), DecodeError> {\n",
    );
    // One lookup in a table of decoders per frequency and one indirect call: a `match` on
    // (frequency, number) compiled to two jump tables and a call, in a frame of its own.
    out.push_str(
        "        let (table, first): (&[Option<DecodeFn>], u32) = match id.frequency() {\n",
    );
    for &(f, name, first) in &tables {
        let _ = writeln!(
            out,
            "            {} => (&{name}, {first:#X}),",
            frequency_path(f)
        );
    }
    out.push_str("        };\n");
    out.push_str("        match table.get(id.number().wrapping_sub(first) as usize) {\n            Some(Some(decode)) => decode(self, r),\n            _ => decode_unknown(self, id, r),\n        }\n    }\n\n");

    // Per-variant dispatch helpers.
    let dispatch = |out: &mut String, sig: &str, doc: &str, body: &str, unknown: &str| {
        let _ = writeln!(out, "    /// {doc}");
        let _ = writeln!(out, "    {sig} {{");
        out.push_str("        match self {\n");
        for m in &template.messages {
            let ty = camel(&m.name);
            let bind = if body.contains("m.") { "m" } else { "_" };
            let _ = writeln!(
                out,
                "            Self::{ty}({bind}) => {},",
                body.replace("$T", &ty)
            );
        }
        let bind = if unknown.contains("m.") || unknown.contains("m,") {
            "m"
        } else {
            "_"
        };
        let _ = writeln!(out, "            Self::Unknown({bind}) => {unknown},");
        out.push_str("        }\n    }\n\n");
    };
    dispatch(
        &mut out,
        "pub fn id(&self) -> MessageId",
        "The message's frequency and number.",
        "$T::ID",
        "m.id",
    );
    dispatch(
        &mut out,
        "pub fn name(&self) -> &'static str",
        "The template name of the message (`Unknown` for an unknown number).",
        "$T::NAME",
        "\"Unknown\"",
    );
    out.push_str("    /// The template facts about this message, or `None` for an unknown one.\n    pub fn info(&self) -> Option<&'static MessageInfo> {\n        lookup(self.id())\n    }\n\n");
    dispatch(
        &mut out,
        "pub fn encode_body<B: BufMut + ?Sized>(&self, w: &mut B) -> Result<(), EncodeError>",
        "Writes the message body (without header or message number).\n    ///\n    /// # Errors\n    /// When a Variable field or block is too long for its length prefix.",
        "m.encode_body(w)",
        "{ w.put_slice(&m.body); Ok(()) }",
    );
    dispatch(
        &mut out,
        "pub fn encoded_len(&self) -> usize",
        "The number of bytes [`Message::encode_body`] writes.",
        "m.encoded_len()",
        "m.body.len()",
    );
    dispatch(
        &mut out,
        "pub fn visit<V: Visitor + ?Sized>(&self, v: &mut V)",
        "Walks the blocks and fields in wire order (an unknown message has none).",
        "m.visit(v)",
        "{}",
    );
    out.push_str("}\n\n");

    let replace = if blank.is_some() {
        "    let new = T::decode_body(r)?.into();\n    if let Message::CloseCircuit(_) = out {\n        // Nothing of a `CloseCircuit` to drop: the enum's drop glue is not called.\n        std::mem::forget(std::mem::replace(out, new));\n    } else {\n        *out = new;\n    }\n"
    } else {
        "    *out = T::decode_body(r)?.into();\n"
    };
    let _ = write!(
        out,
        "/// Decodes one message type into `out`; kept out of line so that the dispatch does not\n/// carry every message's temporaries in one stack frame.\n#[inline(never)]\nfn decode_to<T: MessageType + Into<Message>>(out: &mut Message, r: &mut Reader<'_>) -> Result<(), DecodeError> {{\n{replace}    Ok(())\n}}\n\n"
    );
    out.push_str("/// Keeps the body of a message the template does not have; out of line and cold, so that\n/// the dispatch saves no registers for it.\n#[cold]\n#[inline(never)]\nfn decode_unknown(out: &mut Message, id: MessageId, r: &mut Reader<'_>) -> Result<(), DecodeError> {\n    *out = Message::Unknown(UnknownMessage { id, body: r.rest() });\n    Ok(())\n}\n\n");
    out.push_str("/// Decodes one message body into a [`Message`]: an entry of the dispatch tables.\ntype DecodeFn = fn(&mut Message, &mut Reader<'_>) -> Result<(), DecodeError>;\n\n");
    for &(f, name, first) in &tables {
        let of = || sorted.iter().filter(move |m| m.frequency == f);
        let len = of().map(|m| m.number - first + 1).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "/// The decoders of {} messages, by number (from {first:#X}).\nstatic {name}: [Option<DecodeFn>; {len}] = [",
            frequency_path(f).trim_start_matches("Frequency::")
        );
        for i in 0..len {
            match of().find(|m| m.number - first == i) {
                Some(m) => {
                    let _ = writeln!(out, "    Some(decode_to::<{}>),", camel(&m.name));
                }
                None => out.push_str("    None,\n"),
            }
        }
        out.push_str("];\n\n");
    }
    out.push_str(
        "/// The template facts about the message numbered `id`, if the template has it.\n",
    );
    out.push_str("pub fn lookup(id: MessageId) -> Option<&'static MessageInfo> {\n    MESSAGES\n        .binary_search_by_key(&(id.frequency(), id.number()), |m| (m.id.frequency(), m.id.number()))\n        .ok()\n        .map(|i| &MESSAGES[i])\n}\n\n");
    out.push_str("/// The template facts about the message called `name`, if the template has it.\npub fn lookup_name(name: &str) -> Option<&'static MessageInfo> {\n    MESSAGES.iter().find(|m| m.name == name)\n}\n\n");

    for m in &template.messages {
        let ty = camel(&m.name);
        if is_boxed(m) {
            let _ = writeln!(
                out,
                "impl From<{ty}> for Message {{\n    fn from(m: {ty}) -> Self {{\n        Self::{ty}(Box::new(m))\n    }}\n}}\n\nimpl From<Box<{ty}>> for Message {{\n    fn from(m: Box<{ty}>) -> Self {{\n        Self::{ty}(m)\n    }}\n}}\n"
            );
        } else {
            let _ = writeln!(
                out,
                "impl From<{ty}> for Message {{\n    fn from(m: {ty}) -> Self {{\n        Self::{ty}(m)\n    }}\n}}\n"
            );
        }
    }
    out
}

fn tuple_strategy(exprs: &[String], names: &[String]) -> (String, String) {
    // proptest implements Strategy for tuples of up to 12 elements: nest in chunks of 10.
    if exprs.len() == 1 {
        return (exprs[0].clone(), names[0].clone());
    }
    if exprs.len() <= 10 {
        return (
            format!("({},)", exprs.join(", ")),
            format!("({},)", names.join(", ")),
        );
    }
    let mut s = Vec::new();
    let mut p = Vec::new();
    for (chunk_e, chunk_n) in exprs.chunks(10).zip(names.chunks(10)) {
        let (se, pe) = tuple_strategy(chunk_e, chunk_n);
        s.push(se);
        p.push(pe);
    }
    (
        format!("({},)", s.join(", ")),
        format!("({},)", p.join(", ")),
    )
}

fn gen_arbitrary(template: &Template) -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    out.push_str("//! proptest strategies for every message (feature `arbitrary`).\n\n");
    out.push_str("use proptest::prelude::*;\n\nuse super::*;\nuse crate::strategy;\nuse crate::{Frequency, Message, MessageId};\n");
    for m in &template.messages {
        let ty = camel(&m.name);
        for b in &m.blocks {
            let path = block_type_path(m, b);
            let names: Vec<String> = b.fields.iter().map(|f| snake(&f.name)).collect();
            let exprs: Vec<String> = b.fields.iter().map(|f| strategy_expr(f.ty)).collect();
            let _ = writeln!(
                out,
                "\nimpl Arbitrary for {path} {{\n    type Parameters = ();\n    type Strategy = BoxedStrategy<Self>;\n\n    fn arbitrary_with((): ()) -> Self::Strategy {{"
            );
            if names.is_empty() {
                out.push_str("        Just(Self {}).boxed()\n");
            } else {
                let (s, p) = tuple_strategy(&exprs, &names);
                let _ = writeln!(
                    out,
                    "        {s}\n            .prop_map(|{p}| Self {{ {} }})\n            .boxed()",
                    names.join(", ")
                );
            }
            out.push_str("    }\n}\n");
        }
        let _ = writeln!(
            out,
            "\nimpl Arbitrary for {ty} {{\n    type Parameters = ();\n    type Strategy = BoxedStrategy<Self>;\n\n    fn arbitrary_with((): ()) -> Self::Strategy {{"
        );
        if m.blocks.is_empty() {
            out.push_str("        Just(Self).boxed()\n");
        } else {
            let names: Vec<String> = m.blocks.iter().map(|b| snake(&b.name)).collect();
            let exprs: Vec<String> = m
                .blocks
                .iter()
                .map(|b| {
                    let path = block_type_path(m, b);
                    match b.kind {
                        BlockKind::Single => format!("any::<{path}>()"),
                        BlockKind::Multiple(_) => format!("strategy::array::<{path}, _>()"),
                        BlockKind::Variable => format!("strategy::blocks::<{path}>()"),
                    }
                })
                .collect();
            let (s, p) = tuple_strategy(&exprs, &names);
            let _ = writeln!(
                out,
                "        {s}\n            .prop_map(|{p}| Self {{ {} }})\n            .boxed()",
                names.join(", ")
            );
        }
        out.push_str("    }\n}\n");
    }

    out.push_str("\n/// A strategy for random messages numbered `id`, or `None` for a number the template lacks.\npub fn message_strategy(id: MessageId) -> Option<BoxedStrategy<Message>> {\n    Some(match (id.frequency(), id.number()) {\n");
    let mut sorted: Vec<&MessageDef> = template.messages.iter().collect();
    sorted.sort_by_key(|m| (m.frequency, m.number));
    for m in sorted {
        let ty = camel(&m.name);
        let _ = writeln!(
            out,
            "        ({}, {}) => any::<{ty}>().prop_map(Message::from).boxed(),",
            frequency_path(m.frequency),
            number_literal(m)
        );
    }
    out.push_str("        _ => return None,\n    })\n}\n");
    out
}
