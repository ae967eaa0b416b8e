//! Reads the LLUDP message template (`message_template.msg`) and generates Rust for it.
//!
//! The template is the data file Second Life and OpenSimulator generate their packet code
//! from: every UDP message's name, frequency class and number, trust, zero-coding and the
//! blocks and fields of its body. This crate has two halves:
//!
//! - [`parse_template`]: a nom parser into a [`Template`] model, with errors that name the line
//!   and column, and validation (unique names, unique numbers per frequency, numbers in range).
//!   The model prints back to a canonical template with `Display`.
//! - [`generate`]: the code generator behind `cargo xtask codegen`, which writes the message
//!   types of the `opensim-messages` crate.
//!
//! ```
//! let text = "version 2.0\n{\n\tStartPingCheck High 1 NotTrusted Unencoded\n\t{\n\t\tPingID Single\n\t\t{ PingID U8 }\n\t}\n}\n";
//! let template = opensim_template::parse_template(text).unwrap();
//! assert_eq!(template.messages[0].name, "StartPingCheck");
//! let files = opensim_template::generate(&template);
//! assert!(files.iter().any(|f| f.path == "mod.rs"));
//! ```

#![forbid(unsafe_code)]

mod generate;
mod model;
mod parse;

pub use generate::{GeneratedFile, generate};
pub use model::{
    BlockDef, BlockKind, Deprecation, Encoding, FieldDef, FieldType, Frequency, MessageDef,
    Template, Trust,
};
pub use parse::{ParseError, ParseErrorKind, parse_template};
