#![allow(clippy::unwrap_used)]
//! The generator's output for a small template, compared with a committed expected file.
//!
//! After an intended change to the generator, refresh the file with
//! `UPDATE_EXPECT=1 cargo test -p opensim-template --test generate`.

use opensim_template::{generate, parse_template};

#[test]
fn small_template_generates_the_expected_code() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let text = std::fs::read_to_string(format!("{dir}/small.msg")).unwrap();
    let files = generate(&parse_template(&text).unwrap());
    let mut actual = String::new();
    for f in &files {
        actual.push_str(&format!("==> {} <==\n{}\n", f.path, f.contents));
    }
    let expected_path = format!("{dir}/small.expected");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "generated code differs from tests/data/small.expected at line {}:\n  got:      {:?}\n  expected: {:?}",
            line + 1,
            actual.lines().nth(line),
            expected.lines().nth(line)
        );
    }
    // What the generator promises about names and shapes.
    assert!(actual.contains("pub struct StartPingCheck {"));
    assert!(actual.contains("pub numbers: [everything::Numbers; 2],"));
    assert!(actual.contains("pub net: Blocks<everything::Net>,"));
    // A Variable block of fixed-size fields is read with one bounds check for all instances.
    assert!(actual.contains("r.fixed_blocks::<"));
    // Messages over 128 bytes are boxed in the enum; small ones are held inline.
    assert!(actual.contains("    Everything(Box<Everything>),"));
    assert!(actual.contains("    StartPingCheck(StartPingCheck),"));
    assert!(
        actual.contains("pub type_: ::uuid::Uuid,"),
        "keywords get an underscore"
    );
    assert!(actual.contains("pub struct CloseCircuit;"));
    assert!(actual.contains("MessageId::new(Frequency::Fixed, 0xFFFFFFFB)"));
}
