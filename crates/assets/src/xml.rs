//! The `XmlSerializer` XML that OpenSimulator's asset service reads and writes.
//!
//! Output matches OpenSimulator 0.9.2.2 byte for byte: UTF-8 byte-order mark, XML
//! declaration, two-space indentation, `xmlns:xsd` before `xmlns:xsi`, empty strings as
//! `<X />`. Input is parsed leniently (BOM, declaration, namespaces and element order are
//! optional; missing elements take the defaults `XmlSerializer` would give them).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use quick_xml::events::Event;
use uuid::Uuid;

/// UTF-8 byte-order mark that .NET's `Encoding.UTF8` writes first.
pub const BOM: &[u8] = b"\xef\xbb\xbf";
const DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
const NS: &str = " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
/// Longest name or description kept (`AssetBase.MAX_ASSET_NAME` / `MAX_ASSET_DESC`).
pub const MAX_NAME_CHARS: usize = 64;
/// Most ids accepted in one `get_assets_exist` request.
pub const MAX_EXIST_IDS: usize = 65_536;

/// `AssetFlags` bit: map tile (deletable under the default remote-delete policy).
pub const FLAG_MAPTILE: u32 = 1;
/// `AssetFlags` bit: rewritable.
pub const FLAG_REWRITABLE: u32 = 2;
/// `AssetFlags` bit: collectable.
pub const FLAG_COLLECTABLE: u32 = 4;

/// Why an XML body was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML: {0}")]
    Syntax(String),
    /// Well-formed, but the root element is not the expected one.
    #[error("unexpected root element <{0}>")]
    WrongRoot(String),
    /// An element's text does not parse as its type.
    #[error("bad value in <{element}>: {value:?}")]
    BadValue {
        /// Element name.
        element: &'static str,
        /// Offending text (truncated).
        value: String,
    },
    /// Neither `<ID>` nor `<FullID><Guid>` holds a UUID.
    #[error("asset has no UUID id")]
    NoId,
    /// Too many elements in an array.
    #[error("too many ids (limit {MAX_EXIST_IDS})")]
    TooMany,
}

/// An asset as carried by `<AssetBase>` (OpenSim's `AssetBase`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssetBase {
    /// Asset UUID (`ID` and `FullID`).
    pub id: Uuid,
    /// Display name (at most 64 characters are kept by the server).
    pub name: String,
    /// Description (at most 64 characters are kept by the server).
    pub description: String,
    /// Asset type number (`AssetType`).
    pub asset_type: i8,
    /// Region-local asset.
    pub local: bool,
    /// Temporary asset.
    pub temporary: bool,
    /// Creator id text (UUID, or `uuid;url;name` for hypergrid).
    pub creator_id: String,
    /// `AssetFlags` bits.
    pub flags: u32,
    /// Asset bytes.
    pub data: Vec<u8>,
}

/// Metadata of a stored asset (everything but the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssetMeta {
    /// Asset UUID.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Asset type number.
    pub asset_type: i8,
    /// Region-local asset.
    pub local: bool,
    /// Temporary asset.
    pub temporary: bool,
    /// Creator id text.
    pub creator_id: String,
    /// `AssetFlags` bits.
    pub flags: u32,
}

impl AssetBase {
    /// Metadata part of this asset.
    pub fn meta(&self) -> AssetMeta {
        AssetMeta {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            asset_type: self.asset_type,
            local: self.local,
            temporary: self.temporary,
            creator_id: self.creator_id.clone(),
            flags: self.flags,
        }
    }

    /// Rebuilds an asset from metadata and bytes.
    pub fn from_parts(meta: AssetMeta, data: Vec<u8>) -> Self {
        AssetBase {
            id: meta.id,
            name: meta.name,
            description: meta.description,
            asset_type: meta.asset_type,
            local: meta.local,
            temporary: meta.temporary,
            creator_id: meta.creator_id,
            flags: meta.flags,
            data,
        }
    }
}

/// MIME type OpenSimulator associates with an asset type (`SLUtil.SLAssetTypeToContentType`).
pub fn content_type(asset_type: i8) -> &'static str {
    match asset_type {
        0 => "image/x-j2c",
        1 => "audio/ogg",
        2 => "application/vnd.ll.callingcard",
        3 => "application/vnd.ll.landmark",
        5 => "application/vnd.ll.clothing",
        6 => "application/vnd.ll.primitive",
        7 => "application/vnd.ll.notecard",
        10 => "application/vnd.ll.lsltext",
        11 => "application/vnd.ll.lslbyte",
        12 | 18 => "image/tga",
        13 => "application/vnd.ll.bodypart",
        17 => "audio/x-wav",
        19 => "image/jpeg",
        20 => "application/vnd.ll.animation",
        21 => "application/vnd.ll.gesture",
        22 => "application/x-metaverse-simstate",
        24 => "application/vnd.ll.link",
        25 => "application/vnd.ll.linkfolder",
        49 => "application/vnd.ll.mesh",
        57 | -2 => "application/llsd+xml",
        _ => "application/octet-stream",
    }
}

/// Truncates to at most [`MAX_NAME_CHARS`] characters, as OpenSim's backends do.
pub fn truncate_name(s: &mut String) {
    if let Some((idx, _)) = s.char_indices().nth(MAX_NAME_CHARS) {
        s.truncate(idx);
    }
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&s.as_bytes()[last..]);
}

fn elem(out: &mut Vec<u8>, indent: &str, name: &str, text: &str) {
    out.extend_from_slice(indent.as_bytes());
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    if text.is_empty() {
        out.extend_from_slice(b" />\n");
        return;
    }
    out.push(b'>');
    escape_into(out, text);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b">\n");
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `AssetFlags` as `XmlSerializer` writes a `[Flags]` enum: names separated by spaces.
pub fn flags_text(flags: u32) -> String {
    if flags == 0 {
        return "Normal".to_owned();
    }
    if flags & !(FLAG_MAPTILE | FLAG_REWRITABLE | FLAG_COLLECTABLE) != 0 {
        return flags.to_string();
    }
    let mut parts = Vec::with_capacity(3);
    for (bit, name) in [
        (FLAG_MAPTILE, "Maptile"),
        (FLAG_REWRITABLE, "Rewritable"),
        (FLAG_COLLECTABLE, "Collectable"),
    ] {
        if flags & bit != 0 {
            parts.push(name);
        }
    }
    parts.join(" ")
}

fn parse_flags(text: &str) -> Result<u32, XmlError> {
    let mut flags = 0;
    for word in text.split_whitespace() {
        flags |= match word {
            "Normal" => 0,
            "Maptile" => FLAG_MAPTILE,
            "Rewritable" => FLAG_REWRITABLE,
            "Collectable" => FLAG_COLLECTABLE,
            other => other.parse::<u32>().map_err(|_| bad("Flags", text))?,
        };
    }
    Ok(flags)
}

fn bad(element: &'static str, value: &str) -> XmlError {
    XmlError::BadValue {
        element,
        value: value.chars().take(64).collect(),
    }
}

fn header(out: &mut Vec<u8>, root: &str) {
    out.extend_from_slice(BOM);
    out.extend_from_slice(DECL.as_bytes());
    out.push(b'<');
    out.extend_from_slice(root.as_bytes());
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(b">\n");
}

fn common_tail(out: &mut Vec<u8>, m: &AssetMeta) {
    elem(out, "  ", "Local", bool_text(m.local));
    elem(out, "  ", "Temporary", bool_text(m.temporary));
    elem(out, "  ", "CreatorID", &m.creator_id);
    elem(out, "  ", "Flags", &flags_text(m.flags));
}

fn id_elems(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = Uuid::encode_buffer();
    let id = id.hyphenated().encode_lower(&mut buf);
    out.extend_from_slice(b"  <FullID>\n");
    elem(out, "    ", "Guid", id);
    out.extend_from_slice(b"  </FullID>\n");
    elem(out, "  ", "ID", id);
}

/// Writes an `<AssetBase>` document exactly as OpenSim's `ServerUtils.SerializeResult` does.
pub fn write_asset_base(out: &mut Vec<u8>, meta: &AssetMeta, data: &[u8]) {
    out.reserve(600 + data.len() * 4 / 3);
    header(out, "AssetBase");
    if data.is_empty() {
        out.extend_from_slice(b"  <Data />\n");
    } else {
        out.extend_from_slice(b"  <Data>");
        let start = out.len();
        out.resize(
            start + base64::encoded_len(data.len(), true).unwrap_or(0),
            0,
        );
        let n = B64.encode_slice(data, &mut out[start..]).unwrap_or(0);
        out.truncate(start + n);
        out.extend_from_slice(b"</Data>\n");
    }
    id_elems(out, &meta.id);
    elem(out, "  ", "Name", &meta.name);
    elem(out, "  ", "Description", &meta.description);
    elem(out, "  ", "Type", &meta.asset_type.to_string());
    elem(out, "  ", "UploadAttempts", "0");
    common_tail(out, meta);
    out.extend_from_slice(b"</AssetBase>");
}

/// Writes an `<AssetMetadata>` document (CreationDate is the .NET default, as OpenSim's
/// SQLite backend returns it).
pub fn write_metadata(out: &mut Vec<u8>, meta: &AssetMeta) {
    header(out, "AssetMetadata");
    id_elems(out, &meta.id);
    elem(out, "  ", "Name", &meta.name);
    elem(out, "  ", "Description", &meta.description);
    elem(out, "  ", "CreationDate", "0001-01-01T00:00:00");
    elem(out, "  ", "Type", &meta.asset_type.to_string());
    elem(out, "  ", "ContentType", content_type(meta.asset_type));
    common_tail(out, meta);
    out.extend_from_slice(b"</AssetMetadata>");
}

/// `<string>…</string>` scalar result (no namespaces, as OpenSim writes it).
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(BOM);
    out.extend_from_slice(DECL.as_bytes());
    out.extend_from_slice(b"<string>");
    escape_into(out, s);
    out.extend_from_slice(b"</string>");
}

/// `<boolean>…</boolean>` scalar result.
pub fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(BOM);
    out.extend_from_slice(DECL.as_bytes());
    out.extend_from_slice(b"<boolean>");
    out.extend_from_slice(bool_text(b).as_bytes());
    out.extend_from_slice(b"</boolean>");
}

/// `<ArrayOfBoolean>` result of `get_assets_exist`.
pub fn write_bool_array(out: &mut Vec<u8>, v: &[bool]) {
    header(out, "ArrayOfBoolean");
    for b in v {
        elem(out, "  ", "boolean", bool_text(*b));
    }
    out.extend_from_slice(b"</ArrayOfBoolean>");
}

/// Writes an `<ArrayOfString>` request body (as OpenSim's connector sends it: no indentation).
pub fn write_string_array(out: &mut Vec<u8>, ids: &[String]) {
    out.extend_from_slice(BOM);
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?><ArrayOfString");
    out.extend_from_slice(NS.as_bytes());
    out.push(b'>');
    for id in ids {
        out.extend_from_slice(b"<string>");
        escape_into(out, id);
        out.extend_from_slice(b"</string>");
    }
    out.extend_from_slice(b"</ArrayOfString>");
}

/// Walks a document of the shape `<root><child>text</child>…</root>` (depth ≤ 3),
/// calling `f(path, text)` for each text-bearing leaf. Returns the root name.
fn walk(
    input: &[u8],
    mut f: impl FnMut(&[&[u8]], &str) -> Result<(), XmlError>,
) -> Result<Vec<u8>, XmlError> {
    let input = input.strip_prefix(BOM).unwrap_or(input);
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let syn = |e: quick_xml::Error| XmlError::Syntax(e.to_string());
    // Names of open elements; depth beyond 3 is skipped without storing.
    let mut stack: Vec<Vec<u8>> = Vec::with_capacity(4);
    let mut depth = 0usize;
    let mut root: Option<Vec<u8>> = None;
    let mut closed = false;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(syn)? {
            Event::Start(e) => {
                if closed {
                    return Err(XmlError::Syntax("content after root".into()));
                }
                if depth == 0 {
                    root = Some(e.local_name().as_ref().to_vec());
                }
                depth += 1;
                if depth <= 3 {
                    stack.push(e.local_name().as_ref().to_vec());
                }
                text.clear();
            }
            Event::Empty(e) => {
                if closed {
                    return Err(XmlError::Syntax("content after root".into()));
                }
                if depth == 0 {
                    root = Some(e.local_name().as_ref().to_vec());
                    closed = true;
                } else if depth < 3 {
                    let name = e.local_name().as_ref().to_vec();
                    let mut path: Vec<&[u8]> = stack.iter().map(Vec::as_slice).collect();
                    path.push(&name);
                    f(&path, "")?;
                }
            }
            Event::Text(t) => {
                if depth > 0 && depth <= 3 {
                    text.push_str(&t.unescape().map_err(syn)?);
                }
            }
            Event::CData(t) => {
                if depth > 0 && depth <= 3 {
                    let s = std::str::from_utf8(&t).map_err(|e| XmlError::Syntax(e.to_string()))?;
                    text.push_str(s);
                }
            }
            Event::End(_) => {
                if depth == 0 {
                    return Err(XmlError::Syntax("unbalanced end tag".into()));
                }
                if depth <= 3 {
                    let path: Vec<&[u8]> = stack.iter().map(Vec::as_slice).collect();
                    if depth >= 2 {
                        f(&path, &text)?;
                    }
                    stack.pop();
                }
                text.clear();
                depth -= 1;
                if depth == 0 {
                    closed = true;
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if depth != 0 || !closed {
        return Err(XmlError::Syntax("unexpected end of document".into()));
    }
    root.ok_or_else(|| XmlError::Syntax("no root element".into()))
}

fn parse_bool(element: &'static str, t: &str) -> Result<bool, XmlError> {
    match t.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(element, t)),
    }
}

/// Parses an `<AssetBase>` document (BOM, declaration and namespaces optional).
pub fn parse_asset_base(input: &[u8]) -> Result<AssetBase, XmlError> {
    let mut a = AssetBase::default();
    let mut id_text: Option<Uuid> = None;
    let mut full_id: Option<Uuid> = None;
    let mut bad_id = false;
    let root = walk(input, |path, t| {
        match path {
            [_, b"Data"] => {
                let clean: Vec<u8> = t.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
                a.data = B64.decode(&clean).map_err(|_| bad("Data", t))?;
            }
            [_, b"FullID", b"Guid"] => {
                full_id = Some(Uuid::parse_str(t.trim()).map_err(|_| bad("Guid", t))?);
            }
            [_, b"ID"] => match Uuid::parse_str(t.trim()) {
                Ok(u) => id_text = Some(u),
                Err(_) => bad_id = true,
            },
            [_, b"Name"] => a.name = t.to_owned(),
            [_, b"Description"] => a.description = t.to_owned(),
            [_, b"Type"] => a.asset_type = t.trim().parse().map_err(|_| bad("Type", t))?,
            [_, b"Local"] => a.local = parse_bool("Local", t)?,
            [_, b"Temporary"] => a.temporary = parse_bool("Temporary", t)?,
            [_, b"CreatorID"] => a.creator_id = t.to_owned(),
            [_, b"Flags"] => a.flags = parse_flags(t)?,
            _ => {}
        }
        Ok(())
    })?;
    if root != b"AssetBase" {
        return Err(XmlError::WrongRoot(String::from_utf8_lossy(&root).into()));
    }
    // OpenSim's ID setter wins over FullID when it parses; a non-UUID ID (a hypergrid URL)
    // cannot be stored here.
    a.id = match (id_text, full_id, bad_id) {
        (Some(u), _, _) => u,
        (None, Some(u), false) => u,
        _ => return Err(XmlError::NoId),
    };
    Ok(a)
}

/// Parses an `<ArrayOfString>` document into its strings.
pub fn parse_string_array(input: &[u8]) -> Result<Vec<String>, XmlError> {
    let mut v = Vec::new();
    let mut too_many = false;
    let root = walk(input, |path, t| {
        if let [_, b"string"] = path {
            if v.len() >= MAX_EXIST_IDS {
                too_many = true;
            } else {
                v.push(t.to_owned());
            }
        }
        Ok(())
    })?;
    if root != b"ArrayOfString" {
        return Err(XmlError::WrongRoot(String::from_utf8_lossy(&root).into()));
    }
    if too_many {
        return Err(XmlError::TooMany);
    }
    Ok(v)
}

/// Parses a `<string>` scalar (the POST /assets reply) into its text.
pub fn parse_string(input: &[u8]) -> Result<String, XmlError> {
    let input = input.strip_prefix(BOM).unwrap_or(input);
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut out = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| XmlError::Syntax(e.to_string()))?
        {
            Event::Text(t) => {
                out.push_str(&t.unescape().map_err(|e| XmlError::Syntax(e.to_string()))?)
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}
