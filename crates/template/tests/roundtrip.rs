#![allow(clippy::unwrap_used)]
//! Property test: any template model printed as text parses back to the same model.

use opensim_template::{
    BlockDef, BlockKind, Deprecation, Encoding, FieldDef, FieldType, Frequency, MessageDef,
    Template, Trust, parse_template,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[A-Z][A-Za-z0-9_]{0,12}"
}

fn doc_lines() -> impl Strategy<Value = Vec<String>> {
    // Comment text as the parser keeps it: trimmed, one line, not a banner of stars.
    proptest::collection::vec("[a-zA-Z0-9(),.:;'=+-][a-zA-Z0-9 (),.:;'=+-]{0,30}", 0..3)
        .prop_map(|v| v.into_iter().map(|s| s.trim().to_string()).collect())
}

fn field_type() -> impl Strategy<Value = FieldType> {
    prop_oneof![
        Just(FieldType::U8),
        Just(FieldType::U16),
        Just(FieldType::U32),
        Just(FieldType::U64),
        Just(FieldType::S8),
        Just(FieldType::S16),
        Just(FieldType::S32),
        Just(FieldType::S64),
        Just(FieldType::F32),
        Just(FieldType::F64),
        Just(FieldType::LLVector3),
        Just(FieldType::LLVector3d),
        Just(FieldType::LLVector4),
        Just(FieldType::LLQuaternion),
        Just(FieldType::LLUUID),
        Just(FieldType::BOOL),
        Just(FieldType::IPADDR),
        Just(FieldType::IPPORT),
        Just(FieldType::Variable1),
        Just(FieldType::Variable2),
        (1u16..=300).prop_map(FieldType::Fixed),
    ]
}

fn block() -> impl Strategy<Value = BlockDef> {
    (
        doc_lines(),
        name(),
        prop_oneof![
            Just(BlockKind::Single),
            Just(BlockKind::Variable),
            (1u8..=255).prop_map(BlockKind::Multiple)
        ],
        proptest::collection::vec((doc_lines(), name(), field_type()), 0..5),
    )
        .prop_map(|(docs, name, kind, fields)| {
            let mut seen = std::collections::HashSet::new();
            let fields = fields
                .into_iter()
                .filter(|(_, n, _)| seen.insert(n.clone()))
                .map(|(docs, name, ty)| FieldDef { docs, name, ty })
                .collect();
            BlockDef {
                docs,
                name,
                kind,
                fields,
            }
        })
}

fn message() -> impl Strategy<Value = MessageDef> {
    (
        doc_lines(),
        name(),
        prop_oneof![
            Just(Frequency::High),
            Just(Frequency::Medium),
            Just(Frequency::Low),
            Just(Frequency::Fixed)
        ],
        any::<u32>(),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(None),
            Just(Some(Deprecation::Deprecated)),
            Just(Some(Deprecation::UdpDeprecated)),
            Just(Some(Deprecation::UdpBlackListed))
        ],
        proptest::collection::vec(block(), 0..4),
    )
        .prop_map(
            |(docs, name, frequency, n, trusted, zero, deprecation, blocks)| {
                let (min, max) = frequency.number_range();
                let mut seen = std::collections::HashSet::new();
                MessageDef {
                    docs,
                    name,
                    frequency,
                    number: min + n % (max - min + 1),
                    trust: if trusted {
                        Trust::Trusted
                    } else {
                        Trust::NotTrusted
                    },
                    encoding: if zero {
                        Encoding::Zerocoded
                    } else {
                        Encoding::Unencoded
                    },
                    deprecation,
                    blocks: blocks
                        .into_iter()
                        .filter(|b| seen.insert(b.name.clone()))
                        .collect(),
                }
            },
        )
}

fn template() -> impl Strategy<Value = Template> {
    proptest::collection::vec(message(), 0..8).prop_map(|msgs| {
        let mut names = std::collections::HashSet::new();
        let mut numbers = std::collections::HashSet::new();
        let messages = msgs
            .into_iter()
            .filter(|m| names.insert(m.name.clone()) && numbers.insert((m.frequency, m.number)))
            .collect();
        Template {
            version: "2.0".into(),
            messages,
        }
    })
}

proptest! {
    #[test]
    fn printed_template_parses_back(t in template()) {
        let text = t.to_string();
        let back = parse_template(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, t);
    }
}
