//! What a client sends: [`LoginParams`] and its builder.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::codec::LoginEncoding;
use crate::password::{Credential, md5_hex};
use crate::{LoginError, LoginValue};

/// The XML-RPC method of the classic viewer login.
pub const LOGIN_METHOD: &str = "login_to_simulator";

/// The `options` a viewer asks for (the sections of the answer it wants).
///
/// OpenSimulator ignores the list and always sends every section; other grids honour it.
/// This is libomv's default list (with the viewers' spelling `tutorial_setting`) plus
/// `max-agent-groups` and `map-server-url`, which current viewers also request.
pub const DEFAULT_OPTIONS: &[&str] = &[
    "inventory-root",
    "inventory-skeleton",
    "inventory-lib-root",
    "inventory-lib-owner",
    "inventory-skel-lib",
    "initial-outfit",
    "gestures",
    "event_categories",
    "event_notifications",
    "classified_categories",
    "buddy-list",
    "ui-config",
    "tutorial_setting",
    "login-flags",
    "global-textures",
    "adult_compliant",
    "max-agent-groups",
    "map-server-url",
];

/// Where the avatar should arrive (the `start` member).
#[derive(Clone, Debug, PartialEq)]
pub enum StartLocation {
    /// `"home"`: the account's home region.
    Home,
    /// `"last"`: where the avatar logged out.
    Last,
    /// `"uri:<region>&<x>&<y>&<z>"`: a named region and a position in it (metres).
    ///
    /// OpenSimulator matches `^uri:([^&]+)&(\d+[.]?\d*)&...$`, so the region name must not
    /// contain `&` and the coordinates must be finite and not negative.
    Uri {
        /// The region name.
        region: String,
        /// East, in metres from the region's south-west corner.
        x: f32,
        /// North, in metres.
        y: f32,
        /// Height, in metres.
        z: f32,
    },
}

impl StartLocation {
    /// The wire form of the `start` member.
    pub fn to_wire(&self) -> String {
        match self {
            Self::Home => "home".into(),
            Self::Last => "last".into(),
            // Rust prints floats without exponents, which is what OpenSimulator's regex needs.
            Self::Uri { region, x, y, z } => format!("uri:{region}&{x}&{y}&{z}"),
        }
    }

    fn validate(&self) -> Result<(), LoginError> {
        if let Self::Uri { region, x, y, z } = self {
            if region.trim().is_empty() || region.contains('&') {
                return Err(LoginError::InvalidParams(
                    "start region name must be non-empty and contain no '&'".into(),
                ));
            }
            if [x, y, z].iter().any(|c| !c.is_finite() || **c < 0.0) {
                return Err(LoginError::InvalidParams(
                    "start coordinates must be finite and not negative".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A random identifier of one installation of the client, from which `mac` and `id0` derive.
///
/// Grids use `mac` and `id0` as hardware fingerprints (they can ban them), and expect them
/// to stay the same across logins from the same machine. Sending real hardware data would
/// leak it, so this crate derives both from a random id instead: generate one with
/// [`InstallationId::generate`] on first run, store its text form (`to_string()`, parsed
/// back with `str::parse`) with the client's settings, and pass it to every login. A new id
/// looks like a new machine to the grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstallationId(Uuid);

impl InstallationId {
    /// A fresh random id (UUID v4 from the OS random source).
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Wraps a stored UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID, e.g. to store it.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The `mac` member: 32 lowercase hex digits (the form viewers send: an MD5 hex).
    pub fn mac(&self) -> String {
        md5_hex(format!("opensim-login mac {}", self.0.hyphenated()).as_bytes())
    }

    /// The `id0` member: 32 lowercase hex digits, unrelated to [`mac`](Self::mac).
    pub fn id0(&self) -> String {
        md5_hex(format!("opensim-login id0 {}", self.0.hyphenated()).as_bytes())
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for InstallationId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s.trim()).map(Self)
    }
}

/// Everything sent in one login request, built with [`LoginParams::builder`].
///
/// `Debug` never shows the credential.
#[derive(Clone, Debug)]
pub struct LoginParams {
    login_uri: String,
    first: String,
    last: String,
    credential: Credential,
    start: StartLocation,
    channel: String,
    version: String,
    platform: String,
    platform_version: String,
    platform_string: Option<String>,
    mac: String,
    id0: String,
    installation_id: Option<InstallationId>,
    host_id: String,
    scope_id: Option<Uuid>,
    options: Vec<String>,
    agree_to_tos: bool,
    read_critical: bool,
    viewer_digest: Option<String>,
    address_size: u32,
    extended_errors: bool,
    last_exec_event: Option<i32>,
    token: String,
    mfa_hash: String,
    extra: BTreeMap<String, LoginValue>,
    encoding: LoginEncoding,
}

impl LoginParams {
    /// Starts a builder for `first last` logging in to `login_uri` (the grid's login URI,
    /// e.g. `http://127.0.0.1:9000/` for a standalone region, port 8002 on a grid).
    pub fn builder(
        login_uri: impl Into<String>,
        first: impl Into<String>,
        last: impl Into<String>,
        credential: impl Into<Credential>,
    ) -> LoginParamsBuilder {
        LoginParamsBuilder {
            p: LoginParams {
                login_uri: login_uri.into(),
                first: first.into(),
                last: last.into(),
                credential: credential.into(),
                start: StartLocation::Last,
                channel: "opensim-networking".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                platform: default_platform().into(),
                platform_version: String::new(),
                platform_string: None,
                mac: String::new(),
                id0: String::new(),
                installation_id: None,
                host_id: String::new(),
                scope_id: None,
                options: DEFAULT_OPTIONS.iter().map(|s| (*s).to_owned()).collect(),
                agree_to_tos: false,
                read_critical: false,
                viewer_digest: Some(Uuid::nil().hyphenated().to_string()),
                address_size: 64,
                extended_errors: true,
                last_exec_event: None,
                token: String::new(),
                mfa_hash: String::new(),
                extra: BTreeMap::new(),
                encoding: LoginEncoding::XmlRpc,
            },
            mac_set: false,
            id0_set: false,
        }
    }

    /// The login URI the first request goes to.
    pub fn login_uri(&self) -> &str {
        &self.login_uri
    }

    /// The account's first name.
    pub fn first(&self) -> &str {
        &self.first
    }

    /// The account's last name.
    pub fn last(&self) -> &str {
        &self.last
    }

    /// The credential (its `Debug` is redacted).
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The start location.
    pub fn start(&self) -> &StartLocation {
        &self.start
    }

    /// The `mac` member that will be sent.
    pub fn mac(&self) -> &str {
        &self.mac
    }

    /// The `id0` member that will be sent.
    pub fn id0(&self) -> &str {
        &self.id0
    }

    /// The installation id `mac`/`id0` were derived from; when the builder generated it,
    /// store it and pass it to later logins so the grid sees the same machine.
    pub fn installation_id(&self) -> Option<InstallationId> {
        self.installation_id
    }

    /// The `options` that will be sent.
    pub fn options(&self) -> &[String] {
        &self.options
    }

    /// The encoding of the request.
    pub fn encoding(&self) -> LoginEncoding {
        self.encoding
    }

    /// Copy of these parameters with `agree_to_tos` set, to log in again after the user
    /// accepted the terms shown by a [`LoginError::TosRequired`].
    pub fn with_agree_to_tos(&self, agree: bool) -> Self {
        Self {
            agree_to_tos: agree,
            ..self.clone()
        }
    }

    /// Copy of these parameters with `read_critical` set, after a [`LoginError::CriticalMessage`].
    pub fn with_read_critical(&self, read: bool) -> Self {
        Self {
            read_critical: read,
            ..self.clone()
        }
    }

    /// The members of the request struct, encoding-neutral.
    ///
    /// Contains the hashed password (`passwd`): do not log it. `options` replaces the
    /// option list (a redirect's `next_options`).
    pub fn wire_members(&self, options: Option<&[String]>) -> BTreeMap<String, LoginValue> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: LoginValue| {
            m.insert(k.to_owned(), v);
        };
        put("first", self.first.as_str().into());
        put("last", self.last.as_str().into());
        match &self.credential {
            Credential::Password(p) => put("passwd", p.expose_hash().into()),
            Credential::WebLoginKey(k) => put("web_login_key", k.hyphenated().to_string().into()),
        }
        put("start", self.start.to_wire().into());
        put("channel", self.channel.as_str().into());
        put("version", self.version.as_str().into());
        put("platform", self.platform.as_str().into());
        put("platform_version", self.platform_version.as_str().into());
        if let Some(s) = &self.platform_string {
            put("platform_string", s.as_str().into());
        }
        put("mac", self.mac.as_str().into());
        put("id0", self.id0.as_str().into());
        put("host_id", self.host_id.as_str().into());
        if let Some(scope) = self.scope_id {
            put("scope_id", scope.hyphenated().to_string().into());
        }
        let options = options.unwrap_or(&self.options);
        put(
            "options",
            LoginValue::Array(options.iter().map(|o| o.as_str().into()).collect()),
        );
        put("agree_to_tos", self.agree_to_tos.into());
        put("read_critical", self.read_critical.into());
        if let Some(d) = &self.viewer_digest {
            put("viewer_digest", d.as_str().into());
        }
        put(
            "address_size",
            LoginValue::Int(i64::from(self.address_size)),
        );
        put("extended_errors", self.extended_errors.into());
        if let Some(e) = self.last_exec_event {
            put("last_exec_event", e.into());
        }
        put("token", self.token.as_str().into());
        put("mfa_hash", self.mfa_hash.as_str().into());
        for (k, v) in &self.extra {
            put(k, v.clone());
        }
        m
    }
}

/// Builder of [`LoginParams`]; every setter has a sensible default.
#[derive(Debug)]
#[must_use = "call build() to get the LoginParams"]
pub struct LoginParamsBuilder {
    p: LoginParams,
    mac_set: bool,
    id0_set: bool,
}

impl LoginParamsBuilder {
    /// Where to arrive (default [`StartLocation::Last`]).
    pub fn start(mut self, start: StartLocation) -> Self {
        self.p.start = start;
        self
    }

    /// The viewer channel (default `opensim-networking`); grids may allow or deny clients
    /// by `channel + " " + version`.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.p.channel = channel.into();
        self
    }

    /// The viewer version (default this crate's version).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.p.version = version.into();
        self
    }

    /// `platform`: `lnx`, `mac` or `win` (default: the one this was compiled for).
    pub fn platform(mut self, platform: impl Into<String>) -> Self {
        self.p.platform = platform.into();
        self
    }

    /// `platform_version`, the OS version (default empty: no host data is sent unasked).
    pub fn platform_version(mut self, version: impl Into<String>) -> Self {
        self.p.platform_version = version.into();
        self
    }

    /// `platform_string`, a readable OS name (not sent by default).
    pub fn platform_string(mut self, s: impl Into<String>) -> Self {
        self.p.platform_string = Some(s.into());
        self
    }

    /// Derive `mac` and `id0` from this installation id (see [`InstallationId`]).
    ///
    /// Without it (and without [`mac`](Self::mac)/[`id0`](Self::id0)), `build` generates a
    /// random id, readable afterwards with [`LoginParams::installation_id`].
    pub fn installation_id(mut self, id: InstallationId) -> Self {
        self.p.installation_id = Some(id);
        self
    }

    /// An explicit `mac` member, overriding the derived one.
    pub fn mac(mut self, mac: impl Into<String>) -> Self {
        self.p.mac = mac.into();
        self.mac_set = true;
        self
    }

    /// An explicit `id0` member, overriding the derived one.
    pub fn id0(mut self, id0: impl Into<String>) -> Self {
        self.p.id0 = id0.into();
        self.id0_set = true;
        self
    }

    /// `host_id` (default empty, as viewers send).
    pub fn host_id(mut self, host_id: impl Into<String>) -> Self {
        self.p.host_id = host_id.into();
        self
    }

    /// `scope_id`, the account scope (not sent by default: OpenSimulator then uses the
    /// account's own scope).
    pub fn scope_id(mut self, scope: Uuid) -> Self {
        self.p.scope_id = Some(scope);
        self
    }

    /// Replaces the `options` list (default [`DEFAULT_OPTIONS`]).
    pub fn options<I, S>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.p.options = options.into_iter().map(Into::into).collect();
        self
    }

    /// `agree_to_tos` (default false; set after the user accepted a [`LoginError::TosRequired`]).
    pub fn agree_to_tos(mut self, agree: bool) -> Self {
        self.p.agree_to_tos = agree;
        self
    }

    /// `read_critical` (default false; set after showing a [`LoginError::CriticalMessage`]).
    pub fn read_critical(mut self, read: bool) -> Self {
        self.p.read_critical = read;
        self
    }

    /// `viewer_digest` (default the zero UUID, as test viewers send; `None` omits it).
    pub fn viewer_digest(mut self, digest: Option<String>) -> Self {
        self.p.viewer_digest = digest;
        self
    }

    /// `address_size`, the client's pointer width (default 64).
    pub fn address_size(mut self, bits: u32) -> Self {
        self.p.address_size = bits;
        self
    }

    /// `extended_errors` (default true: ask for detailed failure reasons where supported).
    pub fn extended_errors(mut self, on: bool) -> Self {
        self.p.extended_errors = on;
        self
    }

    /// `last_exec_event`, how the previous run ended (not sent by default).
    pub fn last_exec_event(mut self, event: i32) -> Self {
        self.p.last_exec_event = Some(event);
        self
    }

    /// `token` (multi-factor token; default empty).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.p.token = token.into();
        self
    }

    /// `mfa_hash` (default empty).
    pub fn mfa_hash(mut self, hash: impl Into<String>) -> Self {
        self.p.mfa_hash = hash.into();
        self
    }

    /// Any further member; it replaces a standard member of the same name.
    pub fn extra(mut self, key: impl Into<String>, value: LoginValue) -> Self {
        self.p.extra.insert(key.into(), value);
        self
    }

    /// The request encoding (default [`LoginEncoding::XmlRpc`]).
    pub fn encoding(mut self, encoding: LoginEncoding) -> Self {
        self.p.encoding = encoding;
        self
    }

    /// Checks the parameters and fills in `mac`/`id0`.
    ///
    /// # Errors
    /// [`LoginError::InvalidParams`] for an empty name, a login URI that is not absolute
    /// http(s), a bad start location, a zero web login key, a web login key with the LLSD
    /// encoding, or text that XML cannot carry.
    pub fn build(self) -> Result<LoginParams, LoginError> {
        let Self {
            mut p,
            mac_set,
            id0_set,
        } = self;
        check_login_uri(&p.login_uri)?;
        if p.first.trim().is_empty() || p.last.trim().is_empty() {
            return Err(LoginError::InvalidParams(
                "first and last name must not be empty".into(),
            ));
        }
        if let Credential::WebLoginKey(k) = &p.credential
            && k.is_nil()
        {
            return Err(LoginError::InvalidParams(
                "the web login key must not be the zero UUID".into(),
            ));
        }
        if p.encoding == LoginEncoding::Llsd && !matches!(p.credential, Credential::Password(_)) {
            return Err(LoginError::InvalidParams(
                "the LLSD login needs a password (web_login_key is XML-RPC only)".into(),
            ));
        }
        p.start.validate()?;
        if !(mac_set && id0_set) {
            let id = *p
                .installation_id
                .get_or_insert_with(InstallationId::generate);
            if !mac_set {
                p.mac = id.mac();
            }
            if !id0_set {
                p.id0 = id.id0();
            }
        }
        for (k, v) in &p.wire_members(None) {
            check_xml_text(k)?;
            check_value_text(k, v)?;
        }
        Ok(p)
    }
}

fn default_platform() -> &'static str {
    if cfg!(target_os = "windows") {
        "win"
    } else if cfg!(target_os = "macos") {
        "mac"
    } else {
        "lnx"
    }
}

/// Accepts only absolute `http://` / `https://` URIs with a host.
pub(crate) fn check_login_uri(uri: &str) -> Result<isahc::http::Uri, LoginError> {
    let parsed: isahc::http::Uri = uri
        .parse()
        .map_err(|e| LoginError::InvalidParams(format!("login URI {uri:?}: {e}")))?;
    match (parsed.scheme_str(), parsed.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(parsed),
        _ => Err(LoginError::InvalidParams(format!(
            "login URI {uri:?} is not an absolute http(s) URI"
        ))),
    }
}

/// XML 1.0 cannot carry most control characters, even escaped.
fn check_xml_text(s: &str) -> Result<(), LoginError> {
    let bad = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if s.chars().any(bad) {
        return Err(LoginError::InvalidParams(
            "a parameter contains a control character XML cannot carry".into(),
        ));
    }
    Ok(())
}

fn check_value_text(key: &str, v: &LoginValue) -> Result<(), LoginError> {
    match v {
        LoginValue::String(s) | LoginValue::Date(s) => check_xml_text(s).map_err(|_| {
            LoginError::InvalidParams(format!(
                "parameter {key:?} contains a control character XML cannot carry"
            ))
        }),
        LoginValue::Array(a) => a.iter().try_for_each(|e| check_value_text(key, e)),
        LoginValue::Map(m) => m.iter().try_for_each(|(k, e)| {
            check_xml_text(k)?;
            check_value_text(key, e)
        }),
        LoginValue::Real(r) if !r.is_finite() => Err(LoginError::InvalidParams(format!(
            "parameter {key:?} is not a finite number"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Password;

    fn builder() -> LoginParamsBuilder {
        LoginParams::builder(
            "http://127.0.0.1:9000/",
            "Test",
            "User",
            Password::new("password"),
        )
    }

    #[test]
    fn start_location_wire_forms() {
        assert_eq!(StartLocation::Home.to_wire(), "home");
        assert_eq!(StartLocation::Last.to_wire(), "last");
        let uri = StartLocation::Uri {
            region: "Test Region".into(),
            x: 128.0,
            y: 128.5,
            z: 30.0,
        };
        assert_eq!(uri.to_wire(), "uri:Test Region&128&128.5&30");
        let tiny = StartLocation::Uri {
            region: "R".into(),
            x: 0.000_000_1,
            y: 0.0,
            z: 0.0,
        };
        assert_eq!(tiny.to_wire(), "uri:R&0.0000001&0&0");
    }

    #[test]
    fn installation_id_is_stable_and_derives_distinct_hashes() {
        let id: InstallationId = "2c5fa168-e2d8-49ef-b0a4-a7b763e1e0c2".parse().unwrap();
        assert_eq!(id.to_string().parse::<InstallationId>().unwrap(), id);
        assert_eq!(id.mac(), id.mac());
        assert_eq!(id.mac().len(), 32);
        assert_ne!(id.mac(), id.id0());
        let p = builder().installation_id(id).build().unwrap();
        assert_eq!(p.mac(), id.mac());
        assert_eq!(p.id0(), id.id0());
        // Without one, a fresh id is generated and exposed for persisting.
        let q = builder().build().unwrap();
        let generated = q.installation_id().unwrap();
        assert_eq!(q.mac(), generated.mac());
        assert_ne!(generated, id);
        // Explicit values win and need no id.
        let r = builder().mac("m").id0("i").build().unwrap();
        assert_eq!((r.mac(), r.id0(), r.installation_id()), ("m", "i", None));
    }

    #[test]
    fn build_rejects_misuse() {
        let bad = [
            LoginParams::builder("ftp://x/", "A", "B", Password::new("p")).build(),
            LoginParams::builder("not a uri", "A", "B", Password::new("p")).build(),
            LoginParams::builder("http://h/", " ", "B", Password::new("p")).build(),
            LoginParams::builder("http://h/", "A", "B", Credential::WebLoginKey(Uuid::nil()))
                .build(),
            builder().channel("a\u{1}b").build(),
            builder()
                .start(StartLocation::Uri {
                    region: "a&b".into(),
                    x: 1.0,
                    y: 1.0,
                    z: 1.0,
                })
                .build(),
            builder()
                .start(StartLocation::Uri {
                    region: "a".into(),
                    x: f32::NAN,
                    y: 1.0,
                    z: 1.0,
                })
                .build(),
        ];
        for r in bad {
            assert!(matches!(r, Err(LoginError::InvalidParams(_))), "{r:?}");
        }
    }

    #[test]
    fn members_and_types() {
        let p = builder()
            .agree_to_tos(true)
            .extra("agree_to_tos", LoginValue::Int(1))
            .build()
            .unwrap();
        let m = p.wire_members(None);
        assert_eq!(
            m["passwd"].as_str(),
            Some("$1$5f4dcc3b5aa765d61d8327deb882cf99")
        );
        assert_eq!(m["start"].as_str(), Some("last"));
        assert_eq!(m["read_critical"], LoginValue::Bool(false));
        assert_eq!(m["address_size"], LoginValue::Int(64));
        // Extra members override standard ones.
        assert_eq!(m["agree_to_tos"], LoginValue::Int(1));
        assert!(!m.contains_key("scope_id"));
        let next = vec!["only".to_owned()];
        assert_eq!(
            p.wire_members(Some(&next))["options"],
            LoginValue::Array(vec!["only".into()])
        );
        let k = Uuid::from_u128(7);
        let w = LoginParams::builder("https://h/", "A", "B", Credential::WebLoginKey(k))
            .build()
            .unwrap()
            .wire_members(None);
        assert!(!w.contains_key("passwd"));
        assert_eq!(w["web_login_key"].as_uuid(), Some(k));
    }
}
