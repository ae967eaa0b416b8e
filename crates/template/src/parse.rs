//! The nom parser for `message_template.msg`, with line/column errors and validation.

use std::collections::HashMap;

use nom::{
    IResult, Parser,
    branch::alt,
    bytes::complete::{tag, take_till, take_while, take_while1},
    character::complete::{char, digit1, hex_digit1, space0},
    combinator::{opt, recognize},
    sequence::preceded,
};

use crate::model::{
    BlockDef, BlockKind, Deprecation, Encoding, FieldDef, FieldType, Frequency, MessageDef,
    Template, Trust,
};

/// An error in a template, with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (in characters).
    pub column: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

/// What went wrong while reading a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The text did not have the expected shape.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar wanted here.
        expected: &'static str,
        /// A short excerpt of what was there instead.
        found: String,
    },
    /// A word stood where a keyword was expected but is not one of them.
    #[error("unknown {what} `{found}` (expected one of {allowed})")]
    UnknownKeyword {
        /// Which keyword slot (frequency, trust, field type, ...).
        what: &'static str,
        /// The word that was found.
        found: String,
        /// The allowed words.
        allowed: &'static str,
    },
    /// A number that does not parse or does not fit.
    #[error("bad number `{found}`: {why}")]
    BadNumber {
        /// The text of the number.
        found: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A block was opened with `{` and the file ended before its `}`.
    #[error("unterminated {what} opened on line {opened_line}")]
    Unterminated {
        /// What was left open (message, block).
        what: &'static str,
        /// The line of its `{`.
        opened_line: usize,
    },
    /// Two messages (or two blocks or fields of one message) share a name.
    #[error("duplicate {what} name `{name}` (first on line {first_line})")]
    DuplicateName {
        /// Message, block or field.
        what: &'static str,
        /// The repeated name.
        name: String,
        /// Where it was first used.
        first_line: usize,
    },
    /// Two messages of one frequency share a number.
    #[error("duplicate {frequency:?} message number {number} (`{first}` has it)")]
    DuplicateNumber {
        /// The frequency class.
        frequency: Frequency,
        /// The repeated number.
        number: u32,
        /// The message that had it first.
        first: String,
    },
    /// A message number outside its frequency's range.
    #[error("{frequency:?} message number {number} is outside {min}..={max}")]
    NumberOutOfRange {
        /// The frequency class.
        frequency: Frequency,
        /// The number.
        number: u32,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
}

/// A nom error carrying the position and what the failing rule expected.
#[derive(Debug)]
struct PErr<'a> {
    at: &'a str,
    kind: Option<ParseErrorKind>,
    expected: Option<&'static str>,
}

impl<'a> nom::error::ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: nom::error::ErrorKind) -> Self {
        PErr {
            at: input,
            kind: None,
            expected: None,
        }
    }
    fn append(_input: &'a str, _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, O> = IResult<&'a str, O, PErr<'a>>;

fn fail<'a, O>(at: &'a str, kind: ParseErrorKind) -> PResult<'a, O> {
    Err(nom::Err::Failure(PErr {
        at,
        kind: Some(kind),
        expected: None,
    }))
}

/// Wraps a parser so that its error says what was expected here, and cannot be backtracked.
fn expect<'a, O>(
    what: &'static str,
    mut p: impl Parser<&'a str, Output = O, Error = PErr<'a>>,
) -> impl FnMut(&'a str) -> PResult<'a, O> {
    move |i| {
        p.parse(i).map_err(|e| match e {
            nom::Err::Error(mut err) | nom::Err::Failure(mut err) => {
                if err.kind.is_none() && err.expected.is_none() {
                    err.expected = Some(what);
                    err.at = i;
                }
                nom::Err::Failure(err)
            }
            nom::Err::Incomplete(n) => nom::Err::Incomplete(n),
        })
    }
}

/// Comment lines gathered between two items; `attached` are those not cut off by a blank line.
struct Trivia {
    attached: Vec<String>,
}

fn comment_text(raw: &str) -> Option<String> {
    let text = raw.trim();
    // Banner lines of stars carry no meaning for the item below them.
    if !text.is_empty() && text.chars().all(|c| c == '*') {
        return None;
    }
    Some(text.to_string())
}

/// Skips blanks and `//` comments, keeping the comments that sit right above the next item.
fn trivia(mut i: &str) -> PResult<'_, Trivia> {
    let mut attached = Vec::new();
    let mut newlines_since_comment = 0usize;
    loop {
        let (rest, ws) = take_while(|c: char| c.is_whitespace()).parse(i)?;
        let newlines = ws.matches('\n').count();
        newlines_since_comment += newlines;
        if newlines_since_comment >= 2 {
            // A blank line separates these comments from what follows.
            attached.clear();
        }
        i = rest;
        if let Ok((rest, body)) =
            preceded(tag::<_, _, PErr<'_>>("//"), take_till(|c| c == '\n')).parse(i)
        {
            if newlines_since_comment >= 2 {
                attached.clear();
            }
            if let Some(t) = comment_text(body) {
                attached.push(t);
            }
            newlines_since_comment = 0;
            i = rest;
            continue;
        }
        return Ok((i, Trivia { attached }));
    }
}

/// A comment that ends the current line (after a field), if there is one.
fn trailing_comment(i: &str) -> PResult<'_, Option<String>> {
    let (i, _) = space0(i)?;
    let (i, c) = opt(preceded(tag("//"), take_till(|c| c == '\n'))).parse(i)?;
    Ok((i, c.and_then(comment_text)))
}

fn identifier(i: &str) -> PResult<'_, &str> {
    recognize((
        take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

/// A decimal or `0x` hexadecimal number, range-checked into u32.
fn number(i: &str) -> PResult<'_, u32> {
    let (rest, text) = alt((
        recognize(preceded(alt((tag("0x"), tag("0X"))), hex_digit1)),
        digit1,
    ))
    .parse(i)?;
    let value = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16)
    } else {
        text.parse::<u32>()
    };
    match value {
        Ok(v) => {
            // A number glued to letters (`12ab`) is not a number.
            if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                let (_, tail) = take_while::<_, _, PErr<'_>>(|c: char| c.is_ascii_alphanumeric())
                    .parse(rest)?;
                return fail(
                    i,
                    ParseErrorKind::BadNumber {
                        found: format!("{text}{tail}"),
                        why: "not a decimal or 0x-hex number",
                    },
                );
            }
            Ok((rest, v))
        }
        Err(_) => fail(
            i,
            ParseErrorKind::BadNumber {
                found: text.to_string(),
                why: "does not fit in 32 bits",
            },
        ),
    }
}

/// Skips spaces and comments but not what they say (inside headers).
fn blank(i: &str) -> PResult<'_, ()> {
    trivia(i).map(|(i, _)| (i, ()))
}

/// A keyword out of a fixed set, or an `UnknownKeyword` error for any other word.
fn keyword<'a, T: Copy>(
    what: &'static str,
    allowed: &'static str,
    table: &'static [(&'static str, T)],
) -> impl FnMut(&'a str) -> PResult<'a, T> {
    move |i| {
        let (rest, word) = expect(what, identifier)(i)?;
        match table.iter().find(|(k, _)| *k == word) {
            Some((_, v)) => Ok((rest, *v)),
            None => fail(
                i,
                ParseErrorKind::UnknownKeyword {
                    what,
                    found: word.to_string(),
                    allowed,
                },
            ),
        }
    }
}

const FREQUENCIES: &[(&str, Frequency)] = &[
    ("High", Frequency::High),
    ("Medium", Frequency::Medium),
    ("Low", Frequency::Low),
    ("Fixed", Frequency::Fixed),
];
const TRUSTS: &[(&str, Trust)] = &[
    ("Trusted", Trust::Trusted),
    ("NotTrusted", Trust::NotTrusted),
];
const ENCODINGS: &[(&str, Encoding)] = &[
    ("Zerocoded", Encoding::Zerocoded),
    ("Unencoded", Encoding::Unencoded),
];
const DEPRECATIONS: &[(&str, Deprecation)] = &[
    ("Deprecated", Deprecation::Deprecated),
    ("UDPDeprecated", Deprecation::UdpDeprecated),
    ("UDPBlackListed", Deprecation::UdpBlackListed),
];

#[derive(Clone, Copy)]
enum TypeWord {
    Plain(FieldType),
    Variable,
    Fixed,
}

const TYPES: &[(&str, TypeWord)] = &[
    ("U8", TypeWord::Plain(FieldType::U8)),
    ("U16", TypeWord::Plain(FieldType::U16)),
    ("U32", TypeWord::Plain(FieldType::U32)),
    ("U64", TypeWord::Plain(FieldType::U64)),
    ("S8", TypeWord::Plain(FieldType::S8)),
    ("S16", TypeWord::Plain(FieldType::S16)),
    ("S32", TypeWord::Plain(FieldType::S32)),
    ("S64", TypeWord::Plain(FieldType::S64)),
    ("F32", TypeWord::Plain(FieldType::F32)),
    ("F64", TypeWord::Plain(FieldType::F64)),
    ("LLVector3", TypeWord::Plain(FieldType::LLVector3)),
    ("LLVector3d", TypeWord::Plain(FieldType::LLVector3d)),
    ("LLVector4", TypeWord::Plain(FieldType::LLVector4)),
    ("LLQuaternion", TypeWord::Plain(FieldType::LLQuaternion)),
    ("LLUUID", TypeWord::Plain(FieldType::LLUUID)),
    ("BOOL", TypeWord::Plain(FieldType::BOOL)),
    ("IPADDR", TypeWord::Plain(FieldType::IPADDR)),
    ("IPPORT", TypeWord::Plain(FieldType::IPPORT)),
    ("Variable", TypeWord::Variable),
    ("Fixed", TypeWord::Fixed),
];
const TYPE_NAMES: &str = "U8, U16, U32, U64, S8, S16, S32, S64, F32, F64, LLVector3, \
    LLVector3d, LLVector4, LLQuaternion, LLUUID, BOOL, IPADDR, IPPORT, Variable, Fixed";

#[derive(Clone, Copy)]
enum KindWord {
    Single,
    Multiple,
    Variable,
}
const KINDS: &[(&str, KindWord)] = &[
    ("Single", KindWord::Single),
    ("Multiple", KindWord::Multiple),
    ("Variable", KindWord::Variable),
];

/// `{ Name Type }` with an optional comment after it on the same line.
fn field(i: &str) -> PResult<'_, FieldDef> {
    let (i, _) = char('{')(i)?;
    let (i, _) = blank(i)?;
    let (i, name) = expect("a field name", identifier)(i)?;
    let (i, _) = blank(i)?;
    let (i, word) = keyword("field type", TYPE_NAMES, TYPES)(i)?;
    let (i, _) = blank(i)?;
    let (i, ty) = match word {
        TypeWord::Plain(t) => (i, t),
        TypeWord::Variable => {
            let at = i;
            let (i, n) = expect("the length size of a Variable field (1 or 2)", number)(i)?;
            match n {
                1 => (i, FieldType::Variable1),
                2 => (i, FieldType::Variable2),
                _ => {
                    return fail(
                        at,
                        ParseErrorKind::BadNumber {
                            found: n.to_string(),
                            why: "a Variable field's length size is 1 or 2",
                        },
                    );
                }
            }
        }
        TypeWord::Fixed => {
            let at = i;
            let (i, n) = expect("the size of a Fixed field", number)(i)?;
            match u16::try_from(n) {
                Ok(n) if n > 0 => (i, FieldType::Fixed(n)),
                _ => {
                    return fail(
                        at,
                        ParseErrorKind::BadNumber {
                            found: n.to_string(),
                            why: "a Fixed field's size is 1..=65535",
                        },
                    );
                }
            }
        }
    };
    let (i, _) = blank(i)?;
    let (i, _) = expect("`}` closing the field", char('}'))(i)?;
    let (i, trailing) = trailing_comment(i)?;
    Ok((
        i,
        FieldDef {
            docs: trailing.into_iter().collect(),
            name: name.to_string(),
            ty,
        },
    ))
}

struct Ctx<'a> {
    full: &'a str,
}

impl<'a> Ctx<'a> {
    fn position(&self, at: &str) -> (usize, usize) {
        let offset = self.full.len() - at.len();
        let before = &self.full[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    fn line(&self, at: &str) -> usize {
        self.position(at).0
    }

    fn error(&self, at: &str, kind: ParseErrorKind) -> ParseError {
        let (line, column) = self.position(at);
        ParseError { line, column, kind }
    }

    fn convert(&self, e: nom::Err<PErr<'a>>) -> ParseError {
        match e {
            nom::Err::Error(err) | nom::Err::Failure(err) => {
                let kind = err.kind.unwrap_or_else(|| ParseErrorKind::Expected {
                    expected: err.expected.unwrap_or("valid template syntax"),
                    found: excerpt(err.at),
                });
                self.error(err.at, kind)
            }
            nom::Err::Incomplete(_) => self.error(
                "",
                ParseErrorKind::Expected {
                    expected: "more input",
                    found: "end of file".into(),
                },
            ),
        }
    }
}

fn excerpt(at: &str) -> String {
    if at.is_empty() {
        return "end of file".into();
    }
    let word: String = at
        .chars()
        .take_while(|c| !c.is_whitespace())
        .take(24)
        .collect();
    if word.is_empty() {
        format!("{:?}", at.chars().next().unwrap_or(' '))
    } else {
        format!("`{word}`")
    }
}

/// Parses a whole template and validates it.
///
/// # Errors
/// A [`ParseError`] naming the line and column of the first problem.
pub fn parse_template(text: &str) -> Result<Template, ParseError> {
    let ctx = Ctx { full: text };
    let (mut i, _) = trivia(text).map_err(|e| ctx.convert(e))?;
    let (rest, version) = version_line(i).map_err(|e| ctx.convert(e))?;
    i = rest;

    let mut messages: Vec<MessageDef> = Vec::new();
    let mut names: HashMap<String, &str> = HashMap::new();
    let mut numbers: HashMap<(Frequency, u32), String> = HashMap::new();
    loop {
        let (rest, trivia) = trivia(i).map_err(|e| ctx.convert(e))?;
        i = rest;
        if i.is_empty() {
            break;
        }
        let (rest, msg) = message(&ctx, i, trivia.attached)?;
        // Validation happens here, where the message's line is still known.
        let (msg, head) = msg;
        if let Some(first_line) = names.get(&msg.name) {
            return Err(ctx.error(
                head,
                ParseErrorKind::DuplicateName {
                    what: "message",
                    name: msg.name.clone(),
                    first_line: ctx.line(first_line),
                },
            ));
        }
        let (min, max) = msg.frequency.number_range();
        if msg.number < min || msg.number > max {
            return Err(ctx.error(
                head,
                ParseErrorKind::NumberOutOfRange {
                    frequency: msg.frequency,
                    number: msg.number,
                    min,
                    max,
                },
            ));
        }
        if let Some(first) = numbers.get(&(msg.frequency, msg.number)) {
            return Err(ctx.error(
                head,
                ParseErrorKind::DuplicateNumber {
                    frequency: msg.frequency,
                    number: msg.number,
                    first: first.clone(),
                },
            ));
        }
        names.insert(msg.name.clone(), head);
        numbers.insert((msg.frequency, msg.number), msg.name.clone());
        messages.push(msg);
        i = rest;
    }
    Ok(Template { version, messages })
}

fn version_line(i: &str) -> PResult<'_, String> {
    let (i, _) = expect("`version`", tag("version"))(i)?;
    let (i, _) = space0(i)?;
    let (i, v) = expect(
        "a version number such as 2.0",
        recognize((digit1, opt((char('.'), digit1)))),
    )(i)?;
    Ok((i, v.to_string()))
}

/// A message and where its header starts, for validation errors.
type Headed<'a> = (MessageDef, &'a str);

/// One `{ Header blocks... }` message; returns the header position for validation errors.
fn message<'a>(
    ctx: &Ctx<'a>,
    i: &'a str,
    docs: Vec<String>,
) -> Result<(&'a str, Headed<'a>), ParseError> {
    let open_at = i;
    let conv = |e| ctx.convert(e);
    let (i, _) = expect("`{` opening a message", char('{'))(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let head = i;
    let (i, name) = expect("a message name", identifier)(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let (i, frequency) =
        keyword("frequency", "High, Medium, Low, Fixed", FREQUENCIES)(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let (i, number) = expect("a message number", number)(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let (i, trust) = keyword("trust", "Trusted, NotTrusted", TRUSTS)(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let (i, encoding) = keyword("encoding", "Zerocoded, Unencoded", ENCODINGS)(i).map_err(conv)?;
    let (mut i, _) = space0::<_, PErr<'_>>(i).map_err(conv)?;
    let mut deprecation = None;
    if i.starts_with(|c: char| c.is_ascii_alphabetic()) {
        let (rest, d) = keyword(
            "deprecation",
            "Deprecated, UDPDeprecated, UDPBlackListed",
            DEPRECATIONS,
        )(i)
        .map_err(conv)?;
        deprecation = Some(d);
        i = rest;
    }

    let mut blocks: Vec<BlockDef> = Vec::new();
    loop {
        let (rest, trivia) = trivia(i).map_err(conv)?;
        i = rest;
        if i.is_empty() {
            return Err(ctx.error(
                i,
                ParseErrorKind::Unterminated {
                    what: "message",
                    opened_line: ctx.line(open_at),
                },
            ));
        }
        if let Some(rest) = i.strip_prefix('}') {
            i = rest;
            break;
        }
        let block_at = i;
        let (rest, block) = block(ctx, i, trivia.attached)?;
        if blocks.iter().any(|b| b.name == block.name) {
            return Err(ctx.error(
                block_at,
                ParseErrorKind::DuplicateName {
                    what: "block",
                    name: block.name,
                    first_line: ctx.line(open_at),
                },
            ));
        }
        blocks.push(block);
        i = rest;
    }
    let msg = MessageDef {
        docs,
        name: name.to_string(),
        frequency,
        number,
        trust,
        encoding,
        deprecation,
        blocks,
    };
    Ok((i, (msg, head)))
}

fn block<'a>(
    ctx: &Ctx<'a>,
    i: &'a str,
    docs: Vec<String>,
) -> Result<(&'a str, BlockDef), ParseError> {
    let open_at = i;
    let conv = |e| ctx.convert(e);
    let (i, _) =
        expect("`{` opening a block, or `}` closing the message", char('{'))(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let (i, name) = expect("a block name", identifier)(i).map_err(conv)?;
    let (i, _) = blank(i).map_err(conv)?;
    let (i, kind) = keyword("block kind", "Single, Multiple, Variable", KINDS)(i).map_err(conv)?;
    let (mut i, kind) = match kind {
        KindWord::Single => (i, BlockKind::Single),
        KindWord::Variable => (i, BlockKind::Variable),
        KindWord::Multiple => {
            let (i, _) = blank(i).map_err(conv)?;
            let at = i;
            let (i, n) = expect("the count of a Multiple block", number)(i).map_err(conv)?;
            match u8::try_from(n) {
                Ok(n) if n > 0 => (i, BlockKind::Multiple(n)),
                _ => {
                    return Err(ctx.error(
                        at,
                        ParseErrorKind::BadNumber {
                            found: n.to_string(),
                            why: "a Multiple block's count is 1..=255",
                        },
                    ));
                }
            }
        }
    };
    let mut fields: Vec<FieldDef> = Vec::new();
    loop {
        let (rest, trivia) = trivia(i).map_err(conv)?;
        i = rest;
        if i.is_empty() {
            return Err(ctx.error(
                i,
                ParseErrorKind::Unterminated {
                    what: "block",
                    opened_line: ctx.line(open_at),
                },
            ));
        }
        if let Some(rest) = i.strip_prefix('}') {
            i = rest;
            break;
        }
        let field_at = i;
        let (rest, mut f) =
            expect("`{` opening a field, or `}` closing the block", field)(i).map_err(conv)?;
        if fields.iter().any(|g| g.name == f.name) {
            return Err(ctx.error(
                field_at,
                ParseErrorKind::DuplicateName {
                    what: "field",
                    name: f.name,
                    first_line: ctx.line(open_at),
                },
            ));
        }
        let mut docs = trivia.attached;
        docs.append(&mut f.docs);
        f.docs = docs;
        fields.push(f);
        i = rest;
    }
    Ok((
        i,
        BlockDef {
            docs,
            name: name.to_string(),
            kind,
            fields,
        },
    ))
}
