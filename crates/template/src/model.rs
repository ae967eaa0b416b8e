//! The in-memory model of a message template, and its canonical text form.

use std::fmt;

/// A whole parsed template: its version line and every message, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The number after `version` (for example `2.0`), as written.
    pub version: String,
    /// The messages, in the order they appear in the file.
    pub messages: Vec<MessageDef>,
}

/// How often a message is expected; decides the size of its number on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Frequency {
    /// One-byte number, 1..=254.
    High,
    /// Two-byte number (`FF nn`), 1..=254.
    Medium,
    /// Four-byte number (`FF FF hh ll`), 1..=65279.
    Low,
    /// Four-byte number written in full as `0xFFFFFFxx`.
    Fixed,
}

impl Frequency {
    /// The keyword as it appears in the template.
    pub fn keyword(self) -> &'static str {
        match self {
            Frequency::High => "High",
            Frequency::Medium => "Medium",
            Frequency::Low => "Low",
            Frequency::Fixed => "Fixed",
        }
    }

    /// The inclusive range of numbers allowed for this frequency.
    pub fn number_range(self) -> (u32, u32) {
        match self {
            Frequency::High | Frequency::Medium => (1, 254),
            // Low numbers from 0xFF00 up would read back as Fixed ones (`FF FF FF xx`).
            Frequency::Low => (1, 0xFEFF),
            Frequency::Fixed => (0xFFFF_FF00, 0xFFFF_FFFF),
        }
    }
}

/// Whether a message may only come from a trusted circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trust {
    /// Only accepted from trusted circuits (simulator to viewer, simulator to simulator).
    Trusted,
    /// Accepted from anyone.
    NotTrusted,
}

/// Whether the sender may zero-code the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The sender may zero-code the body.
    Zerocoded,
    /// The sender sends the body plain.
    Unencoded,
}

/// The optional deprecation keyword at the end of a message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Deprecation {
    /// Still works; the viewer only warns.
    Deprecated,
    /// Normally carried over HTTP, but still accepted over UDP.
    UdpDeprecated,
    /// Must not arrive over UDP.
    UdpBlackListed,
}

impl Deprecation {
    /// The keyword as it appears in the template.
    pub fn keyword(self) -> &'static str {
        match self {
            Deprecation::Deprecated => "Deprecated",
            Deprecation::UdpDeprecated => "UDPDeprecated",
            Deprecation::UdpBlackListed => "UDPBlackListed",
        }
    }
}

/// One message of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDef {
    /// The comment lines written just above the message (without `//`).
    pub docs: Vec<String>,
    /// The message name, for example `StartPingCheck`.
    pub name: String,
    /// The frequency class.
    pub frequency: Frequency,
    /// The number within the frequency class (`0xFFFFFFxx` in full for Fixed).
    pub number: u32,
    /// Trusted or not.
    pub trust: Trust,
    /// Zero-coded or not.
    pub encoding: Encoding,
    /// The deprecation keyword, if any.
    pub deprecation: Option<Deprecation>,
    /// The blocks, in wire order.
    pub blocks: Vec<BlockDef>,
}

/// How many times a block occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// Exactly once.
    Single,
    /// Exactly N times, with no count on the wire.
    Multiple(u8),
    /// A one-byte count, then that many instances.
    Variable,
}

/// One block of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDef {
    /// Comment lines written just above the block.
    pub docs: Vec<String>,
    /// The block name, for example `AgentData`.
    pub name: String,
    /// How many times it occurs.
    pub kind: BlockKind,
    /// The fields, in wire order.
    pub fields: Vec<FieldDef>,
}

/// One field of a block.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// Comment lines above the field and the comment at the end of its line.
    pub docs: Vec<String>,
    /// The field name, for example `AgentID`.
    pub name: String,
    /// Its type.
    pub ty: FieldType,
}

/// The type of a field, deciding its wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Unsigned 8-bit.
    U8,
    /// Unsigned 16-bit, little-endian.
    U16,
    /// Unsigned 32-bit, little-endian.
    U32,
    /// Unsigned 64-bit, little-endian.
    U64,
    /// Signed 8-bit.
    S8,
    /// Signed 16-bit, little-endian.
    S16,
    /// Signed 32-bit, little-endian.
    S32,
    /// Signed 64-bit, little-endian.
    S64,
    /// IEEE single, little-endian.
    F32,
    /// IEEE double, little-endian.
    F64,
    /// Three F32.
    LLVector3,
    /// Three F64.
    LLVector3d,
    /// Four F32.
    LLVector4,
    /// Three F32; W is recovered by the receiver.
    LLQuaternion,
    /// Sixteen bytes in text order.
    LLUUID,
    /// One byte, non-zero is true.
    BOOL,
    /// IPv4 address in network order.
    IPADDR,
    /// Port, big-endian.
    IPPORT,
    /// A u8 length, then that many bytes.
    Variable1,
    /// A little-endian u16 length, then that many bytes.
    Variable2,
    /// Exactly N bytes.
    Fixed(u16),
}

impl FieldType {
    /// The number of bytes on the wire for fixed-size types, or `None` for Variable ones.
    pub fn fixed_size(self) -> Option<usize> {
        Some(match self {
            FieldType::U8 | FieldType::S8 | FieldType::BOOL => 1,
            FieldType::U16 | FieldType::S16 | FieldType::IPPORT => 2,
            FieldType::U32 | FieldType::S32 | FieldType::F32 | FieldType::IPADDR => 4,
            FieldType::U64 | FieldType::S64 | FieldType::F64 => 8,
            FieldType::LLVector3 | FieldType::LLQuaternion => 12,
            FieldType::LLVector4 | FieldType::LLUUID => 16,
            FieldType::LLVector3d => 24,
            FieldType::Fixed(n) => usize::from(n),
            FieldType::Variable1 | FieldType::Variable2 => return None,
        })
    }

    /// The smallest number of bytes the field can take on the wire.
    pub fn min_size(self) -> usize {
        match self {
            FieldType::Variable1 => 1,
            FieldType::Variable2 => 2,
            other => other.fixed_size().unwrap_or(0),
        }
    }

    /// The type as written in the template (`U32`, `Variable 1`, `Fixed 4`, ...).
    pub fn keyword(self) -> String {
        match self {
            FieldType::Variable1 => "Variable 1".into(),
            FieldType::Variable2 => "Variable 2".into(),
            FieldType::Fixed(n) => format!("Fixed {n}"),
            other => format!("{other:?}"),
        }
    }
}

impl BlockDef {
    /// The smallest number of bytes one instance of the block takes on the wire.
    pub fn min_instance_size(&self) -> usize {
        self.fields.iter().map(|f| f.ty.min_size()).sum()
    }

    /// Whether every field of the block has a fixed size.
    pub fn is_fixed_size(&self) -> bool {
        self.fields.iter().all(|f| f.ty.fixed_size().is_some())
    }
}

impl MessageDef {
    /// Whether decoding the message needs no heap allocation (no Variable field or block).
    pub fn is_fixed_size(&self) -> bool {
        self.blocks
            .iter()
            .all(|b| b.kind != BlockKind::Variable && b.is_fixed_size())
    }
}

fn write_docs(f: &mut fmt::Formatter<'_>, indent: &str, docs: &[String]) -> fmt::Result {
    for line in docs {
        if line.is_empty() {
            writeln!(f, "{indent}//")?;
        } else {
            writeln!(f, "{indent}// {line}")?;
        }
    }
    Ok(())
}

/// Prints the template in the canonical layout; parsing the output gives back an equal model.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "version {}", self.version)?;
        for m in &self.messages {
            writeln!(f)?;
            write_docs(f, "", &m.docs)?;
            writeln!(f, "{{")?;
            write!(f, "\t{} {} ", m.name, m.frequency.keyword())?;
            if m.frequency == Frequency::Fixed {
                write!(f, "0x{:08X}", m.number)?;
            } else {
                write!(f, "{}", m.number)?;
            }
            let trust = match m.trust {
                Trust::Trusted => "Trusted",
                Trust::NotTrusted => "NotTrusted",
            };
            let enc = match m.encoding {
                Encoding::Zerocoded => "Zerocoded",
                Encoding::Unencoded => "Unencoded",
            };
            write!(f, " {trust} {enc}")?;
            if let Some(d) = m.deprecation {
                write!(f, " {}", d.keyword())?;
            }
            writeln!(f)?;
            for b in &m.blocks {
                write_docs(f, "\t", &b.docs)?;
                writeln!(f, "\t{{")?;
                match b.kind {
                    BlockKind::Single => writeln!(f, "\t\t{} Single", b.name)?,
                    BlockKind::Multiple(n) => writeln!(f, "\t\t{} Multiple {n}", b.name)?,
                    BlockKind::Variable => writeln!(f, "\t\t{} Variable", b.name)?,
                }
                for fd in &b.fields {
                    write_docs(f, "\t\t", &fd.docs)?;
                    writeln!(f, "\t\t{{\t{}\t{}\t}}", fd.name, fd.ty.keyword())?;
                }
                writeln!(f, "\t}}")?;
            }
            writeln!(f, "}}")?;
        }
        Ok(())
    }
}
