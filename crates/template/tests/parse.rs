#![allow(clippy::unwrap_used)]
//! Parser tests: the real template, every construct, every error path with its line.

use opensim_template::{
    BlockKind, Deprecation, Encoding, FieldType, Frequency, ParseErrorKind, Trust, parse_template,
};

#[test]
fn real_template_parses_into_478_messages() {
    let Some(dir) = opensim_testkit::protocol_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("message_template.msg")).unwrap();
    let t = parse_template(&text).unwrap();
    assert_eq!(t.version, "2.0");
    assert_eq!(t.messages.len(), 478);
    let count = |f| t.messages.iter().filter(|m| m.frequency == f).count();
    assert_eq!(count(Frequency::High), 31);
    assert_eq!(count(Frequency::Medium), 17);
    assert_eq!(count(Frequency::Low), 427);
    assert_eq!(count(Frequency::Fixed), 3);

    let ack = t.messages.iter().find(|m| m.name == "PacketAck").unwrap();
    assert_eq!(ack.number, 0xFFFF_FFFB);
    assert_eq!(ack.blocks[0].kind, BlockKind::Variable);
    let rh = t
        .messages
        .iter()
        .find(|m| m.name == "RegionHandshake")
        .unwrap();
    assert_eq!((rh.frequency, rh.number), (Frequency::Low, 148));
    assert_eq!(rh.trust, Trust::Trusted);
    assert_eq!(rh.encoding, Encoding::Zerocoded);
    let open = t.messages.iter().find(|m| m.name == "OpenCircuit").unwrap();
    assert_eq!(open.deprecation, Some(Deprecation::UdpBlackListed));
    // The printed form parses back to the same model.
    assert_eq!(parse_template(&t.to_string()).unwrap(), t);
}

#[test]
fn every_construct() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/small.msg"))
            .unwrap();
    let t = parse_template(&text).unwrap();
    assert_eq!(t.messages.len(), 4);
    let ping = &t.messages[0];
    assert_eq!(
        ping.docs,
        vec!["Ping - measures round trips", "sim -> viewer"]
    );
    assert_eq!(
        ping.blocks[0].fields[1].docs,
        vec!["oldest unacked sequence"]
    );
    assert!(
        t.messages[1].docs.is_empty(),
        "a blank line detaches comments"
    );
    assert!(t.messages[2].blocks.is_empty());
    let every = &t.messages[3];
    assert_eq!(every.frequency, Frequency::Medium);
    assert_eq!(every.deprecation, Some(Deprecation::Deprecated));
    assert_eq!(every.blocks[0].kind, BlockKind::Multiple(2));
    let types: Vec<FieldType> = every
        .blocks
        .iter()
        .flat_map(|b| &b.fields)
        .map(|f| f.ty)
        .collect();
    assert_eq!(types.len(), 21);
    assert!(types.contains(&FieldType::Fixed(4)));
    assert!(types.contains(&FieldType::Variable1));
    assert!(types.contains(&FieldType::Variable2));
    assert!(types.contains(&FieldType::LLQuaternion));
}

fn err(text: &str) -> (usize, usize, ParseErrorKind) {
    let e = parse_template(text).unwrap_err();
    // The Display form names the position too.
    assert!(
        e.to_string()
            .starts_with(&format!("line {}, column {}", e.line, e.column))
    );
    (e.line, e.column, e.kind)
}

const HEAD: &str = "version 2.0\n";

#[test]
fn unknown_keyword_reports_its_line() {
    let (line, col, kind) = err(&format!("{HEAD}{{\n\tFoo Often 1 Trusted Unencoded\n}}\n"));
    assert_eq!((line, col), (3, 6));
    assert!(
        matches!(kind, ParseErrorKind::UnknownKeyword { what: "frequency", ref found, .. } if found == "Often")
    );

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Single\n\t\t{{ X U128 }}\n\t}}\n}}\n"
    ));
    assert_eq!(line, 6);
    assert!(matches!(
        kind,
        ParseErrorKind::UnknownKeyword {
            what: "field type",
            ..
        }
    ));

    let (line, _, kind) = err(&format!("{HEAD}{{\n\tFoo Low 1 Sometimes Unencoded\n}}\n"));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        ParseErrorKind::UnknownKeyword { what: "trust", .. }
    ));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded Obsolete\n}}\n"
    ));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        ParseErrorKind::UnknownKeyword {
            what: "deprecation",
            ..
        }
    ));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Several\n\t}}\n}}\n"
    ));
    assert_eq!(line, 5);
    assert!(matches!(
        kind,
        ParseErrorKind::UnknownKeyword {
            what: "block kind",
            ..
        }
    ));
}

#[test]
fn bad_numbers_report_their_line() {
    let (line, _, kind) = err(&format!(
        "{HEAD}\n{{\n\tFoo Low 12ab Trusted Unencoded\n}}\n"
    ));
    assert_eq!(line, 4);
    assert!(matches!(kind, ParseErrorKind::BadNumber { .. }));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 99999999999 Trusted Unencoded\n}}\n"
    ));
    assert_eq!(line, 3);
    assert!(matches!(kind, ParseErrorKind::BadNumber { .. }));

    let (line, _, kind) = err(&format!("{HEAD}{{\n\tFoo High 255 Trusted Unencoded\n}}\n"));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        ParseErrorKind::NumberOutOfRange { number: 255, .. }
    ));

    let (line, _, kind) = err(&format!("{HEAD}{{\n\tFoo Fixed 12 Trusted Unencoded\n}}\n"));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        ParseErrorKind::NumberOutOfRange {
            frequency: Frequency::Fixed,
            ..
        }
    ));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Multiple 0\n\t}}\n}}\n"
    ));
    assert_eq!(line, 5);
    assert!(matches!(kind, ParseErrorKind::BadNumber { .. }));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Single\n\t\t{{ X Variable 3 }}\n\t}}\n}}\n"
    ));
    assert_eq!(line, 6);
    assert!(matches!(kind, ParseErrorKind::BadNumber { .. }));
}

#[test]
fn duplicates_report_their_line() {
    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n}}\n{{\n\tBar Low 1 Trusted Unencoded\n}}\n"
    ));
    assert_eq!(line, 6);
    assert!(
        matches!(kind, ParseErrorKind::DuplicateNumber { number: 1, ref first, .. } if first == "Foo")
    );

    // The same number in another frequency is fine.
    parse_template(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n}}\n{{\n\tBar High 1 Trusted Unencoded\n}}\n"
    ))
    .unwrap();

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n}}\n\n{{\n\tFoo Low 2 Trusted Unencoded\n}}\n"
    ));
    assert_eq!(line, 7);
    assert!(matches!(
        kind,
        ParseErrorKind::DuplicateName {
            what: "message",
            first_line: 3,
            ..
        }
    ));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Single\n\t\t{{ X U8 }}\n\t\t{{ X U16 }}\n\t}}\n}}\n"
    ));
    assert_eq!(line, 7);
    assert!(matches!(
        kind,
        ParseErrorKind::DuplicateName { what: "field", .. }
    ));
}

#[test]
fn unterminated_and_malformed_blocks() {
    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Single\n\t\t{{ X U8 }}\n"
    ));
    assert_eq!(line, 7);
    assert!(matches!(
        kind,
        ParseErrorKind::Unterminated {
            what: "block",
            opened_line: 4
        }
    ));

    let (line, _, kind) = err(&format!("{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n"));
    assert_eq!(line, 4);
    assert!(matches!(
        kind,
        ParseErrorKind::Unterminated {
            what: "message",
            opened_line: 2
        }
    ));

    let (line, _, kind) = err(&format!(
        "{HEAD}{{\n\tFoo Low 1 Trusted Unencoded\n\t{{\n\t\tB Single\n\t\t{{ X U8 U16 }}\n\t}}\n}}\n"
    ));
    assert_eq!(line, 6);
    assert!(matches!(
        kind,
        ParseErrorKind::Expected {
            expected: "`}` closing the field",
            ..
        }
    ));

    let (line, col, kind) = err("versio 2.0\n");
    assert_eq!((line, col), (1, 1));
    assert!(matches!(
        kind,
        ParseErrorKind::Expected {
            expected: "`version`",
            ..
        }
    ));

    let (line, _, kind) = err(&format!("{HEAD}{{\n\t42 Low 1 Trusted Unencoded\n}}\n"));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        ParseErrorKind::Expected {
            expected: "a message name",
            ..
        }
    ));
}
