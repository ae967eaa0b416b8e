//! Wire encodings of the login exchange.
//!
//! Both encodings go through the same encoding-neutral members: requests are built from
//! [`LoginParams::wire_members`](crate::LoginParams::wire_members), and answers are decoded
//! to a `BTreeMap<String, LoginValue>` that
//! [`LoginReply::from_members`](crate::LoginReply::from_members) interprets.
//!
//! - XML-RPC: the `xmlrpc` crate writes the request and parses the answer; this module
//!   converts between its values and [`LoginValue`], and guards its recursive parser against
//!   hostile nesting.
//! - LLSD: `opensim-llsd` (bounded, non-panicking parsers) writes the request map and reads
//!   the answer map; the `From` conversions between [`LoginValue`] and `opensim_llsd::Value`
//!   do the rest.
//!
//! The `encode_*_response` / `decode_*_call` functions are the server side, for test and
//! simulator servers.

use std::collections::BTreeMap;

use crate::response::LoginReply;
use crate::{LoginError, LoginValue};

/// How the login request and its answer are encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginEncoding {
    /// XML-RPC `login_to_simulator`, `text/xml`: the classic form every grid accepts.
    #[default]
    XmlRpc,
    /// LLSD XML map, `application/llsd+xml`, answered with an LLSD map. OpenSimulator
    /// accepts it only with a password (no `web_login_key`), and its answer lacks
    /// `http_port` and the region size (taken as 256). XML-RPC is the better-tested path.
    Llsd,
}

impl LoginEncoding {
    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::XmlRpc => "text/xml",
            Self::Llsd => "application/llsd+xml",
        }
    }

    /// Encodes a request (`method` is ignored by LLSD, which has none).
    ///
    /// # Errors
    /// [`LoginError::InvalidParams`] for an LLSD request without `passwd` (the LLSD login has
    /// no `web_login_key` path).
    pub fn encode_request(
        self,
        method: &str,
        members: BTreeMap<String, LoginValue>,
    ) -> Result<Vec<u8>, LoginError> {
        match self {
            Self::XmlRpc => Ok(encode_xmlrpc_call(method, members)),
            Self::Llsd => encode_llsd_request(members),
        }
    }

    /// Decodes and interprets an answer body.
    ///
    /// # Errors
    /// A fault, a refusal or a malformed body, as [`LoginError`].
    pub fn decode_reply(self, body: &[u8]) -> Result<LoginReply, LoginError> {
        match self {
            Self::XmlRpc => LoginReply::from_members(decode_xmlrpc_response(body)?),
            Self::Llsd => LoginReply::from_members(decode_llsd_response(body)?),
        }
    }
}

/// Writes the LLSD XML map of a login request.
///
/// # Errors
/// [`LoginError::InvalidParams`] without a `passwd` member: OpenSimulator's LLSD login
/// requires `first`, `last` and `passwd`.
pub fn encode_llsd_request(members: BTreeMap<String, LoginValue>) -> Result<Vec<u8>, LoginError> {
    if !members.contains_key("passwd") {
        return Err(LoginError::InvalidParams(
            "the LLSD login needs a password (web_login_key is XML-RPC only)".into(),
        ));
    }
    Ok(encode_llsd_map(members))
}

/// Parses the LLSD answer of a login (XML, or binary/notation if a server sends those);
/// it must be a map.
///
/// # Errors
/// [`LoginError::MalformedResponse`] for a body that is not LLSD or not a map.
pub fn decode_llsd_response(body: &[u8]) -> Result<BTreeMap<String, LoginValue>, LoginError> {
    decode_llsd_map(body, "answer")
}

/// Parses the LLSD map of a login request, as a login server would (for test and simulator
/// servers).
///
/// # Errors
/// [`LoginError::MalformedResponse`] for a body that is not an LLSD map.
pub fn decode_llsd_call(body: &[u8]) -> Result<BTreeMap<String, LoginValue>, LoginError> {
    decode_llsd_map(body, "request")
}

/// Writes the LLSD XML map of a login answer (for test and simulator servers).
pub fn encode_llsd_response(members: BTreeMap<String, LoginValue>) -> Vec<u8> {
    encode_llsd_map(members)
}

fn encode_llsd_map(members: BTreeMap<String, LoginValue>) -> Vec<u8> {
    opensim_llsd::to_xml(&LoginValue::Map(members).into())
}

fn decode_llsd_map(body: &[u8], what: &str) -> Result<BTreeMap<String, LoginValue>, LoginError> {
    let value = opensim_llsd::detect_and_parse(body).map_err(|e| {
        LoginError::MalformedResponse(truncate(format!("LLSD login {what}: {e}"), 300))
    })?;
    match LoginValue::from(value) {
        LoginValue::Map(m) => Ok(m),
        other => Err(LoginError::MalformedResponse(format!(
            "the LLSD login {what} is {}, not a map",
            other.kind()
        ))),
    }
}

/// Deeper than any login document (the real ones nest 14 elements deep).
const MAX_DEPTH: usize = 64;

/// Writes an XML-RPC `methodCall` whose single parameter is a struct of `members`.
pub fn encode_xmlrpc_call(method: &str, members: BTreeMap<String, LoginValue>) -> Vec<u8> {
    let request = xmlrpc::Request::new(method).arg(to_xmlrpc(LoginValue::Map(members)));
    let mut out = Vec::with_capacity(2048);
    // Writing into a Vec cannot fail.
    let _ = request.write_as_xml(&mut out);
    // Written as viewers write it: their prolog and no line breaks between tags. Tools that
    // spot a login by its exact start (Hippolyzer's proxy does) then recognise ours. Text
    // has its `<` and `>` escaped, so `>\n<` only ever joins two tags.
    let body = out.strip_prefix(XMLRPC_CRATE_PROLOG).unwrap_or(&out);
    let mut viewer = Vec::with_capacity(out.len());
    viewer.extend_from_slice(VIEWER_PROLOG);
    let mut rest = body.strip_prefix(b"\n").unwrap_or(body);
    while let Some(at) = rest.windows(3).position(|w| w == b">\n<") {
        viewer.extend_from_slice(&rest[..=at]);
        rest = &rest[at + 2..];
    }
    viewer.extend_from_slice(rest);
    viewer
}

/// The XML declaration the `xmlrpc` crate writes.
const XMLRPC_CRATE_PROLOG: &[u8] = br#"<?xml version="1.0" encoding="utf-8"?>"#;
/// The XML declaration Second Life viewers write (the session capture's login request).
const VIEWER_PROLOG: &[u8] = br#"<?xml version="1.0"?>"#;

/// Writes an XML-RPC `methodResponse` whose value is a struct of `members` (for test and
/// simulator servers).
pub fn encode_xmlrpc_response(members: BTreeMap<String, LoginValue>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?><methodResponse><params><param>",
    );
    let _ = to_xmlrpc(LoginValue::Map(members)).write_as_xml(&mut out);
    out.extend_from_slice(b"</param></params></methodResponse>");
    out
}

/// Writes an XML-RPC fault response.
pub fn encode_xmlrpc_fault(code: i32, message: &str) -> Vec<u8> {
    let fault = xmlrpc::Fault {
        fault_code: code,
        fault_string: message.to_owned(),
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"<?xml version=\"1.0\" encoding=\"utf-8\"?><methodResponse><fault>");
    let _ = fault.to_value().write_as_xml(&mut out);
    out.extend_from_slice(b"</fault></methodResponse>");
    out
}

/// Parses an XML-RPC `methodResponse` whose value must be a struct.
///
/// # Errors
/// [`LoginError::Fault`] for a `<fault>`, [`LoginError::MalformedResponse`] otherwise.
pub fn decode_xmlrpc_response(body: &[u8]) -> Result<BTreeMap<String, LoginValue>, LoginError> {
    check_structure(body)?;
    // The crate parses answers only as part of a call over a `Transport`; ours hands it the
    // body we already read.
    let parsed = xmlrpc::Request::new(crate::LOGIN_METHOD).call(Buffered(body));
    let value = match parsed {
        Ok(v) => v,
        Err(e) => {
            return Err(match e.fault() {
                Some(f) => LoginError::Fault {
                    code: f.fault_code,
                    message: f.fault_string.clone(),
                },
                None => LoginError::MalformedResponse(truncate(e.to_string(), 300)),
            });
        }
    };
    match from_xmlrpc(value) {
        LoginValue::Map(m) => Ok(m),
        other => Err(LoginError::MalformedResponse(format!(
            "the answer is {}, not a struct",
            other.kind()
        ))),
    }
}

/// Parses an XML-RPC `methodCall` with one struct parameter, as a login server would (used
/// by test servers and the simulator crate): returns the method name and the members.
///
/// # Errors
/// [`LoginError::MalformedResponse`] when the body is not such a call.
pub fn decode_xmlrpc_call(
    body: &[u8],
) -> Result<(String, BTreeMap<String, LoginValue>), LoginError> {
    let bad = |what: &str| LoginError::MalformedResponse(format!("XML-RPC call: {what}"));
    check_structure(body)?;
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    let name_start = text
        .find("<methodName>")
        .ok_or_else(|| bad("no <methodName>"))?
        + "<methodName>".len();
    let name_len = text[name_start..]
        .find("</methodName>")
        .ok_or_else(|| bad("no </methodName>"))?;
    let method = unescape(text[name_start..name_start + name_len].trim());
    let params_start = text.find("<params>").ok_or_else(|| bad("no <params>"))?;
    let params_end = text.rfind("</params>").ok_or_else(|| bad("no </params>"))?;
    if params_end < params_start {
        return Err(bad("</params> before <params>"));
    }
    // The parameters of a call have the shape of an answer's: let the answer parser read them.
    let params = &text[params_start..params_end + "</params>".len()];
    let wrapped = format!("<methodResponse>{params}</methodResponse>");
    let members = decode_xmlrpc_response(wrapped.as_bytes())?;
    Ok((method, members))
}

/// A `Transport` that "transmits" by handing back an answer already received.
struct Buffered<'a>(&'a [u8]);

impl<'a> xmlrpc::Transport for Buffered<'a> {
    type Stream = &'a [u8];
    fn transmit(
        self,
        _request: &xmlrpc::Request<'_>,
    ) -> Result<Self::Stream, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0)
    }
}

/// Rejects what the recursive `xmlrpc` parser must not see: element nesting deeper than
/// [`MAX_DEPTH`] (a stack overflow otherwise) and DTDs (entity tricks; XML-RPC has none).
fn check_structure(body: &[u8]) -> Result<(), LoginError> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(off) = memchr(b'<', &body[i..]) {
        let at = i + off;
        let rest = &body[at..];
        let skip_to = |end: &[u8]| -> Result<usize, LoginError> {
            find(rest, end)
                .map(|p| at + p + end.len())
                .ok_or_else(|| LoginError::MalformedResponse("unterminated markup".into()))
        };
        if rest.starts_with(b"<!--") {
            i = skip_to(b"-->")?;
        } else if rest.starts_with(b"<![CDATA[") {
            i = skip_to(b"]]>")?;
        } else if rest.starts_with(b"<?") {
            i = skip_to(b"?>")?;
        } else if rest.starts_with(b"<!") {
            return Err(LoginError::MalformedResponse(
                "document type declarations are not accepted".into(),
            ));
        } else {
            let end = skip_to(b">")?;
            if rest.get(1) == Some(&b'/') {
                depth = depth.saturating_sub(1);
            } else if body[end - 2] != b'/' {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(LoginError::MalformedResponse(format!(
                        "XML nested deeper than {MAX_DEPTH} elements"
                    )));
                }
            }
            i = end;
        }
    }
    Ok(())
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn to_xmlrpc(v: LoginValue) -> xmlrpc::Value {
    use xmlrpc::Value as X;
    match v {
        LoginValue::Nil => X::Nil,
        LoginValue::Bool(b) => X::Bool(b),
        LoginValue::Int(i) => match i32::try_from(i) {
            Ok(small) => X::Int(small),
            Err(_) => X::Int64(i),
        },
        LoginValue::Real(r) => X::Double(r),
        LoginValue::String(s) | LoginValue::Date(s) => X::String(s),
        LoginValue::Uuid(u) => X::String(u.hyphenated().to_string()),
        LoginValue::Binary(b) => X::Base64(b),
        LoginValue::Array(a) => X::Array(a.into_iter().map(to_xmlrpc).collect()),
        LoginValue::Map(m) => X::Struct(m.into_iter().map(|(k, v)| (k, to_xmlrpc(v))).collect()),
    }
}

fn from_xmlrpc(v: xmlrpc::Value) -> LoginValue {
    use xmlrpc::Value as X;
    match v {
        X::Nil => LoginValue::Nil,
        X::Bool(b) => LoginValue::Bool(b),
        X::Int(i) => LoginValue::Int(i64::from(i)),
        X::Int64(i) => LoginValue::Int(i),
        X::Double(r) => LoginValue::Real(r),
        X::String(s) => LoginValue::String(s),
        X::DateTime(d) => LoginValue::Date(d.to_string()),
        X::Base64(b) => LoginValue::Binary(b),
        X::Array(a) => LoginValue::Array(a.into_iter().map(from_xmlrpc).collect()),
        X::Struct(m) => LoginValue::Map(m.into_iter().map(|(k, v)| (k, from_xmlrpc(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn xmlrpc_request_starts_as_a_viewers_does() {
        let mut m = BTreeMap::new();
        m.insert("first".to_owned(), LoginValue::from("Test"));
        // Line breaks and markup characters inside values survive.
        m.insert("last".to_owned(), LoginValue::from("a>\n<b\n"));
        let body = encode_xmlrpc_call("login_to_simulator", m.clone());
        let want: &[u8] = b"<?xml version=\"1.0\"?><methodCall><methodName>login_to_simulator";
        assert!(
            body.starts_with(want),
            "{}",
            String::from_utf8_lossy(&body[..80.min(body.len())])
        );
        let (method, members) = decode_xmlrpc_call(&body).unwrap();
        assert_eq!((method.as_str(), members), ("login_to_simulator", m));
    }

    #[test]
    fn llsd_request_round_trips_and_keeps_types() {
        let mut m = BTreeMap::new();
        m.insert("first".to_owned(), LoginValue::from("A&<B>"));
        m.insert("passwd".to_owned(), LoginValue::from("$1$00"));
        m.insert("n".to_owned(), LoginValue::Int(-5));
        m.insert("flag".to_owned(), LoginValue::Bool(true));
        m.insert("id".to_owned(), LoginValue::Uuid(uuid::Uuid::from_u128(7)));
        m.insert("bytes".to_owned(), LoginValue::Binary(vec![0, 255]));
        m.insert("none".to_owned(), LoginValue::Nil);
        m.insert(
            "list".to_owned(),
            LoginValue::Array(vec!["x".into(), LoginValue::Map(BTreeMap::new())]),
        );
        let body = LoginEncoding::Llsd
            .encode_request("ignored", m.clone())
            .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("<uuid>00000000-0000-0000-0000-000000000007</uuid>"),
            "{text}"
        );
        assert_eq!(decode_llsd_call(&body).unwrap(), m);

        // LLSD integers are 32-bit: wider ones travel as decimal strings and read back.
        let mut wide = BTreeMap::new();
        wide.insert("passwd".to_owned(), LoginValue::from("x"));
        wide.insert("big".to_owned(), LoginValue::Int(1 << 40));
        let back = decode_llsd_call(&encode_llsd_request(wide).unwrap()).unwrap();
        assert_eq!(back["big"].as_i64(), Some(1 << 40));

        let mut no_password = m;
        no_password.remove("passwd");
        assert!(matches!(
            encode_llsd_request(no_password),
            Err(LoginError::InvalidParams(_))
        ));
    }

    #[test]
    fn llsd_answers_that_are_not_maps_are_malformed() {
        for bad in [
            &b"<llsd><array/></llsd>"[..],
            b"<llsd><map><key>a</key>",
            b"",
            b"\xff",
        ] {
            assert!(
                matches!(
                    decode_llsd_response(bad),
                    Err(LoginError::MalformedResponse(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Duplicate keys: the last one wins.
        let m = decode_llsd_response(
            b"<llsd><map><key>login</key><string>false</string><key>login</key><string>true</string></map></llsd>",
        )
        .unwrap();
        assert_eq!(m["login"], LoginValue::from("true"));
    }

    #[test]
    fn call_round_trips_through_the_server_side_decoder() {
        let mut m = BTreeMap::new();
        m.insert("first".to_owned(), LoginValue::from("A&<B>"));
        m.insert("n".to_owned(), LoginValue::Int(-5));
        m.insert("big".to_owned(), LoginValue::Int(1 << 40));
        m.insert("flag".to_owned(), LoginValue::Bool(true));
        m.insert(
            "list".to_owned(),
            LoginValue::Array(vec!["x".into(), LoginValue::Array(vec![])]),
        );
        let body = encode_xmlrpc_call("login_to_simulator", m.clone());
        let (method, back) = decode_xmlrpc_call(&body).unwrap();
        assert_eq!(method, "login_to_simulator");
        assert_eq!(back, m);
        assert_eq!(
            decode_xmlrpc_response(&encode_xmlrpc_response(m.clone())).unwrap(),
            m
        );
    }

    #[test]
    fn faults_and_garbage_are_typed() {
        match decode_xmlrpc_response(&encode_xmlrpc_fault(42, "nope")) {
            Err(LoginError::Fault { code: 42, message }) => assert_eq!(message, "nope"),
            other => panic!("{other:?}"),
        }
        for garbage in [
            &b""[..],
            b"hello",
            b"<html><body>502</body></html>",
            b"<methodResponse><params><param><value><i4>x</i4></value></param></params></methodResponse>",
            b"<methodResponse><params><param><value><i4>1</i4></value></param></params></methodResponse>",
            b"<!DOCTYPE x [<!ENTITY a \"b\">]><methodResponse/>",
            b"<methodResponse><!-- unterminated",
            b"\xff\xfe<<<",
        ] {
            assert!(
                matches!(
                    decode_xmlrpc_response(garbage),
                    Err(LoginError::MalformedResponse(_))
                ),
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let n = 200_000;
        let mut doc = String::from("<methodResponse><params><param>");
        doc.push_str(&"<value><array><data>".repeat(n));
        doc.push_str(&"</data></array></value>".repeat(n));
        doc.push_str("</param></params></methodResponse>");
        assert!(matches!(
            decode_xmlrpc_response(doc.as_bytes()),
            Err(LoginError::MalformedResponse(m)) if m.contains("nested")
        ));
        // Closing tags hidden in a comment cannot buy depth.
        let mut sneaky = format!("<!--{}-->", "</a>".repeat(1000));
        sneaky.push_str(&"<value><array><data>".repeat(100));
        assert!(matches!(
            decode_xmlrpc_response(sneaky.as_bytes()),
            Err(LoginError::MalformedResponse(m)) if m.contains("nested")
        ));
    }
}
