//! What the server answers: [`LoginReply`], [`LoginResponse`] and their parts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use uuid::Uuid;

use crate::{LoginError, LoginValue};

/// One answer of the login server that is not a refusal.
#[derive(Clone, Debug, PartialEq)]
pub enum LoginReply {
    /// `login` = `"true"`.
    Success(Box<LoginResponse>),
    /// `login` = `"indeterminate"`: try again at `next_url` (Second Life style; OpenSimulator
    /// never sends it).
    Redirect(Redirect),
}

/// A login redirect (`login` = `"indeterminate"`).
#[derive(Clone, Debug, PartialEq)]
pub struct Redirect {
    /// Where to send the next request.
    pub next_url: String,
    /// The XML-RPC method for it (`None`: keep the current one).
    pub next_method: Option<String>,
    /// How long the server asks us to wait first.
    pub next_duration: Option<Duration>,
    /// The option list for the next request (`None`: keep ours).
    pub next_options: Option<Vec<String>>,
    /// Text for the user ("Redirecting ...").
    pub message: String,
}

/// A successful login: what a client needs to open the circuit and the capabilities.
///
/// Members a grid sends that this type does not name are kept, unchanged, in
/// [`extra`](Self::extra); so are named optional members that came with an unexpected type.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginResponse {
    /// The avatar's UUID (`agent_id`).
    pub agent_id: Uuid,
    /// `session_id`, carried by almost every UDP message.
    pub session_id: Uuid,
    /// `secure_session_id`, for the few privileged operations.
    pub secure_session_id: Uuid,
    /// `circuit_code`, for `UseCircuitCode` (OpenSimulator sends the `u32` as a signed `i4`).
    pub circuit_code: u32,
    /// `sim_ip` and `sim_port`: the region's UDP endpoint.
    pub sim_addr: SocketAddr,
    /// `region_x`: the region's west edge in metres on the grid (grid x * 256).
    pub region_x: u32,
    /// `region_y`: the region's south edge in metres.
    pub region_y: u32,
    /// `region_size_x` in metres (256 when absent, a classic region).
    pub region_size_x: u32,
    /// `region_size_y` in metres (256 when absent).
    pub region_size_y: u32,
    /// `seed_capability`: the URL to POST the wanted capability names to.
    pub seed_capability: String,
    /// `first_name`, as the grid spells it.
    pub first_name: String,
    /// `last_name`.
    pub last_name: String,
    /// `http_port`: the region's HTTP port, when sent (OpenSimulator sends 0).
    pub http_port: Option<u16>,
    /// `real_id` (OpenSimulator sends the zero UUID).
    pub real_id: Option<Uuid>,
    /// `look_at`, parsed from `"[r0,r1,r0]"`.
    pub look_at: Option<[f32; 3]>,
    /// `start_location`: where the avatar was placed (`home`, `last`, `url` or `safe`).
    pub start_location: Option<String>,
    /// `home`, parsed from its notation-like text.
    pub home: Option<Home>,
    /// `message`: the grid's welcome text.
    pub message: Option<String>,
    /// `agent_access`: maturity rating (`"M"` by default on OpenSimulator).
    pub agent_access: Option<String>,
    /// `agent_access_max` (`"A"` by default).
    pub agent_access_max: Option<String>,
    /// `max-agent-groups`.
    pub max_agent_groups: Option<u32>,
    /// `seconds_since_epoch`: the server's clock (UTC).
    pub seconds_since_epoch: Option<i64>,
    /// `inventory-root[0].folder_id`: the root of the user's inventory.
    pub inventory_root: Option<Uuid>,
    /// `inventory-skeleton`: the user's folders.
    pub inventory_skeleton: Vec<InventoryFolder>,
    /// `inventory-lib-owner[0].agent_id`: who owns the library.
    pub library_owner: Option<Uuid>,
    /// `inventory-lib-root[0].folder_id`: the root of the library.
    pub library_root: Option<Uuid>,
    /// `inventory-skel-lib`: the library's folders.
    pub library_skeleton: Vec<InventoryFolder>,
    /// `buddy-list` (absent when the account has no friends).
    pub buddy_list: Vec<Buddy>,
    /// `gestures`: the active gestures.
    pub gestures: Vec<Gesture>,
    /// `initial-outfit[0]`.
    pub initial_outfit: Option<InitialOutfit>,
    /// `login-flags[0]`.
    pub login_flags: Option<LoginFlags>,
    /// `global-textures[0]`.
    pub global_textures: Option<GlobalTextures>,
    /// `classified_categories`.
    pub classified_categories: Vec<Category>,
    /// `event_categories`.
    pub event_categories: Vec<Category>,
    /// `ui-config[0].allow_first_life`.
    pub allow_first_life: Option<bool>,
    /// `map-server-url`, when the grid has a map tile server.
    pub map_server_url: Option<String>,
    /// Every other member, as received.
    pub extra: BTreeMap<String, LoginValue>,
}

impl LoginResponse {
    /// The region handle: `region_x << 32 | region_y` (both in metres).
    pub fn region_handle(&self) -> u64 {
        region_handle(self.region_x, self.region_y)
    }
}

/// The region handle of the region whose south-west corner is at `(x, y)` metres.
pub fn region_handle(x: u32, y: u32) -> u64 {
    (u64::from(x) << 32) | u64::from(y)
}

/// The account's home (`home` member).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Home {
    /// The home region's west edge, in metres.
    pub region_x: u32,
    /// The home region's south edge, in metres.
    pub region_y: u32,
    /// Position in the region.
    pub position: [f32; 3],
    /// Facing direction.
    pub look_at: [f32; 3],
}

impl Home {
    /// The home region's handle.
    pub fn region_handle(&self) -> u64 {
        region_handle(self.region_x, self.region_y)
    }
}

/// One inventory folder of a skeleton.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryFolder {
    /// `folder_id`.
    pub folder_id: Uuid,
    /// `parent_id` (zero for a root).
    pub parent_id: Uuid,
    /// `name`.
    pub name: String,
    /// `type_default`: the folder type (-1 for a plain folder, 8 root, 46 current outfit ...).
    pub type_default: i32,
    /// `version`, bumped at each change of the folder.
    pub version: i32,
}

/// One friend (`buddy-list` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buddy {
    /// `buddy_id`.
    pub buddy_id: Uuid,
    /// `buddy_rights_given`: rights we gave the friend.
    pub rights_given: i32,
    /// `buddy_rights_has`: rights the friend gave us.
    pub rights_has: i32,
}

/// One active gesture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gesture {
    /// `item_id`: the inventory item.
    pub item_id: Uuid,
    /// `asset_id`: the gesture asset.
    pub asset_id: Uuid,
}

/// The outfit of a new account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialOutfit {
    /// `folder_name`.
    pub folder_name: String,
    /// `gender`.
    pub gender: String,
}

/// `login-flags`, sent as `"Y"`/`"N"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginFlags {
    /// `daylight_savings`: the grid's clock is on summer time.
    pub daylight_savings: bool,
    /// `stipend_since_login`.
    pub stipend_since_login: bool,
    /// `gendered`.
    pub gendered: bool,
    /// `ever_logged_in`.
    pub ever_logged_in: bool,
}

/// `global-textures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalTextures {
    /// `sun_texture_id`.
    pub sun_texture_id: Uuid,
    /// `cloud_texture_id`.
    pub cloud_texture_id: Uuid,
    /// `moon_texture_id`.
    pub moon_texture_id: Uuid,
}

/// A classified or event category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    /// `category_id`.
    pub id: i32,
    /// `category_name`.
    pub name: String,
}

impl LoginReply {
    /// Interprets the members of an answer: success, redirect, or the typed refusal.
    ///
    /// # Errors
    /// The refusal as [`LoginError`] (see [`LoginError::from_refusal`]), or
    /// [`LoginError::MalformedResponse`] when a member needed to connect is missing or bad.
    pub fn from_members(map: BTreeMap<String, LoginValue>) -> Result<Self, LoginError> {
        let mut f = Fields(map);
        let login = f.0.get("login").map(|v| match v {
            LoginValue::Bool(true) => "true".to_owned(),
            LoginValue::Bool(false) => "false".to_owned(),
            other => other.as_str().unwrap_or("").trim().to_ascii_lowercase(),
        });
        match login.as_deref() {
            Some("true") => {
                f.0.remove("login");
                LoginResponse::from_fields(f).map(|r| Self::Success(Box::new(r)))
            }
            Some("indeterminate") => Ok(Self::Redirect(Redirect::from_fields(f)?)),
            _ if login.is_some() || f.0.contains_key("reason") => {
                let reason = f.string("reason").unwrap_or_default();
                let message = f.string("message").unwrap_or_default();
                Err(LoginError::from_refusal(reason, message))
            }
            _ => Err(LoginError::MalformedResponse(
                "the answer has neither `login` nor `reason`".into(),
            )),
        }
    }
}

impl Redirect {
    fn from_fields(mut f: Fields) -> Result<Self, LoginError> {
        let next_url = f.required("next_url", "a string", |v| v.as_str().map(str::to_owned))?;
        Ok(Self {
            next_url,
            next_method: f.string("next_method").filter(|m| !m.is_empty()),
            next_duration: f
                .optional("next_duration", |v| v.as_i64())
                .map(|s| Duration::from_secs(s.clamp(0, 86_400) as u64)),
            next_options: f.optional("next_options", |v| {
                v.as_array()?
                    .iter()
                    .map(|o| o.as_str().map(str::to_owned))
                    .collect()
            }),
            message: f.string("message").unwrap_or_default(),
        })
    }
}

impl LoginResponse {
    fn from_fields(mut f: Fields) -> Result<Self, LoginError> {
        let uuid = |v: &LoginValue| v.as_uuid();
        let agent_id = f.required("agent_id", "a UUID", uuid)?;
        let session_id = f.required("session_id", "a UUID", uuid)?;
        let secure_session_id = f.required("secure_session_id", "a UUID", uuid)?;
        let circuit_code = f.required("circuit_code", "a 32-bit integer", as_u32_bits)?;
        let sim_ip: IpAddr = f.required("sim_ip", "an IP address", |v| {
            v.as_str().and_then(|s| s.trim().parse().ok())
        })?;
        let sim_port = f.required("sim_port", "a port number", |v| {
            v.as_i64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
        })?;
        let region_x = f.required("region_x", "a 32-bit integer", as_u32_bits)?;
        let region_y = f.required("region_y", "a 32-bit integer", as_u32_bits)?;
        let seed_capability = f.required("seed_capability", "a string", |v| {
            v.as_str().map(str::to_owned)
        })?;
        let positive = |v: &LoginValue| {
            v.as_i64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
        };
        Ok(Self {
            agent_id,
            session_id,
            secure_session_id,
            circuit_code,
            sim_addr: SocketAddr::new(sim_ip, sim_port),
            region_x,
            region_y,
            region_size_x: f.optional("region_size_x", positive).unwrap_or(256),
            region_size_y: f.optional("region_size_y", positive).unwrap_or(256),
            seed_capability,
            first_name: f.string("first_name").unwrap_or_default(),
            last_name: f.string("last_name").unwrap_or_default(),
            http_port: f.optional("http_port", |v| {
                v.as_i64().and_then(|p| u16::try_from(p).ok())
            }),
            real_id: f.optional("real_id", uuid),
            look_at: f.optional("look_at", |v| v.as_str().and_then(parse_vec3)),
            start_location: f.string("start_location"),
            home: f.optional("home", |v| v.as_str().and_then(parse_home)),
            message: f.string("message"),
            agent_access: f.string("agent_access"),
            agent_access_max: f.string("agent_access_max"),
            max_agent_groups: f.optional("max-agent-groups", |v| {
                v.as_i64().and_then(|n| u32::try_from(n).ok())
            }),
            seconds_since_epoch: f.optional("seconds_since_epoch", |v| v.as_i64()),
            inventory_root: f.optional("inventory-root", |v| first_uuid(v, "folder_id")),
            inventory_skeleton: f.list("inventory-skeleton", folder),
            library_owner: f.optional("inventory-lib-owner", |v| first_uuid(v, "agent_id")),
            library_root: f.optional("inventory-lib-root", |v| first_uuid(v, "folder_id")),
            library_skeleton: f.list("inventory-skel-lib", folder),
            buddy_list: f.list("buddy-list", |e| {
                Some(Buddy {
                    buddy_id: e.get("buddy_id")?.as_uuid()?,
                    rights_given: as_i32(e.get("buddy_rights_given")?)?,
                    rights_has: as_i32(e.get("buddy_rights_has")?)?,
                })
            }),
            gestures: f.list("gestures", |e| {
                Some(Gesture {
                    item_id: e.get("item_id")?.as_uuid()?,
                    asset_id: e.get("asset_id")?.as_uuid()?,
                })
            }),
            initial_outfit: f.optional("initial-outfit", |v| {
                let e = v.as_array()?.first()?;
                Some(InitialOutfit {
                    folder_name: e.get("folder_name")?.as_str()?.to_owned(),
                    gender: e.get("gender")?.as_str()?.to_owned(),
                })
            }),
            login_flags: f.optional("login-flags", |v| {
                let e = v.as_array()?.first()?;
                let flag = |k: &str| e.get(k).and_then(LoginValue::as_bool);
                Some(LoginFlags {
                    daylight_savings: flag("daylight_savings")?,
                    stipend_since_login: flag("stipend_since_login")?,
                    gendered: flag("gendered")?,
                    ever_logged_in: flag("ever_logged_in")?,
                })
            }),
            global_textures: f.optional("global-textures", |v| {
                let e = v.as_array()?.first()?;
                Some(GlobalTextures {
                    sun_texture_id: e.get("sun_texture_id")?.as_uuid()?,
                    cloud_texture_id: e.get("cloud_texture_id")?.as_uuid()?,
                    moon_texture_id: e.get("moon_texture_id")?.as_uuid()?,
                })
            }),
            classified_categories: f.list("classified_categories", category),
            event_categories: f.list("event_categories", category),
            allow_first_life: f.optional("ui-config", |v| {
                v.as_array()?.first()?.get("allow_first_life")?.as_bool()
            }),
            map_server_url: f.string("map-server-url"),
            extra: f.0,
        })
    }
}

/// The answer's members; parsed members are removed, the rest end up in `extra`.
struct Fields(BTreeMap<String, LoginValue>);

impl Fields {
    fn required<T>(
        &mut self,
        key: &str,
        expected: &str,
        parse: impl FnOnce(&LoginValue) -> Option<T>,
    ) -> Result<T, LoginError> {
        let v = self
            .0
            .get(key)
            .ok_or_else(|| LoginError::MalformedResponse(format!("`{key}` is missing")))?;
        let parsed = parse(v).ok_or_else(|| {
            LoginError::MalformedResponse(format!("`{key}` is {}, not {expected}", v.kind()))
        })?;
        self.0.remove(key);
        Ok(parsed)
    }

    /// Parses an optional member; one that does not parse stays in `extra`.
    fn optional<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&LoginValue) -> Option<T>,
    ) -> Option<T> {
        let v = self.0.get(key)?;
        match parse(v) {
            Some(t) => {
                self.0.remove(key);
                Some(t)
            }
            None => {
                tracing::warn!(
                    member = key,
                    kind = v.kind(),
                    "unexpected login member kept in extra"
                );
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.0.remove(key)? {
            LoginValue::String(s) => Some(s),
            other => {
                self.0.insert(key.to_owned(), other);
                None
            }
        }
    }

    /// An array of structs, all of which must parse (else it stays in `extra`, and the list is empty).
    fn list<T>(&mut self, key: &str, item: impl Fn(&LoginValue) -> Option<T>) -> Vec<T> {
        self.optional(key, |v| v.as_array()?.iter().map(&item).collect())
            .unwrap_or_default()
    }
}

/// OpenSimulator writes `u32`s (circuit code, region coordinates) through `Int32` casts.
fn as_u32_bits(v: &LoginValue) -> Option<u32> {
    let n = v.as_i64()?;
    if let Ok(small) = i32::try_from(n) {
        Some(small as u32)
    } else {
        u32::try_from(n).ok()
    }
}

fn as_i32(v: &LoginValue) -> Option<i32> {
    v.as_i64().and_then(|n| i32::try_from(n).ok())
}

fn first_uuid(v: &LoginValue, key: &str) -> Option<Uuid> {
    v.as_array()?.first()?.get(key)?.as_uuid()
}

fn folder(e: &LoginValue) -> Option<InventoryFolder> {
    Some(InventoryFolder {
        folder_id: e.get("folder_id")?.as_uuid()?,
        parent_id: e.get("parent_id")?.as_uuid()?,
        name: e.get("name")?.as_str()?.to_owned(),
        type_default: as_i32(e.get("type_default")?)?,
        version: as_i32(e.get("version")?)?,
    })
}

fn category(e: &LoginValue) -> Option<Category> {
    Some(Category {
        id: as_i32(e.get("category_id")?)?,
        name: e.get("category_name")?.as_str()?.to_owned(),
    })
}

/// Parses `"[r0.1,r0.2,r0]"` (LLSD-notation-like reals; the `r` is optional).
pub fn parse_vec3(text: &str) -> Option<[f32; 3]> {
    let v = parse_reals(text)?;
    match v[..] {
        [x, y, z] => Some([x as f32, y as f32, z as f32]),
        _ => None,
    }
}

fn parse_reals(text: &str) -> Option<Vec<f64>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    inner
        .split(',')
        .map(|p| {
            let p = p.trim();
            p.strip_prefix('r').unwrap_or(p).trim().parse::<f64>().ok()
        })
        .collect()
}

/// Parses OpenSimulator's `home` text:
/// `{'region_handle':[r256000,r256000], 'position':[r128,r128,r30], 'look_at':[r1,r0,r0]}`.
pub fn parse_home(text: &str) -> Option<Home> {
    let text = text.trim();
    if !(text.starts_with('{') && text.ends_with('}')) {
        return None;
    }
    let handle = parse_reals(member_array(text, "region_handle")?)?;
    let [x, y] = handle[..] else { return None };
    let metres =
        |c: f64| (c.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&c)).then_some(c as u32);
    Some(Home {
        region_x: metres(x)?,
        region_y: metres(y)?,
        position: parse_vec3(member_array(text, "position")?)?,
        look_at: parse_vec3(member_array(text, "look_at")?)?,
    })
}

/// The `[...]` text after `'key':` (or `"key":`) in a notation map.
fn member_array<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let after = ['\'', '"'].iter().find_map(|q| {
        let pat = format!("{q}{key}{q}");
        text.find(&pat).map(|i| &text[i + pat.len()..])
    })?;
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    if !after.starts_with('[') {
        return None;
    }
    let end = after.find(']')?;
    Some(&after[..=end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn notation_strings() {
        assert_eq!(parse_vec3("[r0,r1,r0]"), Some([0.0, 1.0, 0.0]));
        assert_eq!(
            parse_vec3("[r0.99949799999999999756,r0.03166859999999999814,r0]"),
            Some([0.999_498, 0.031_668_6, 0.0])
        );
        assert_eq!(parse_vec3(" [ 1 , -2.5 , r3 ] "), Some([1.0, -2.5, 3.0]));
        for bad in [
            "",
            "[]",
            "[r1,r2]",
            "[r1,r2,r3,r4]",
            "r1,r2,r3",
            "[ra,r2,r3]",
        ] {
            assert_eq!(parse_vec3(bad), None, "{bad}");
        }
        let h = parse_home(
            "{'region_handle':[r256000,r256512], 'position':[r128,r64.5,r30], 'look_at':[r1,r0,r0]}",
        )
        .unwrap();
        assert_eq!((h.region_x, h.region_y), (256_000, 256_512));
        assert_eq!(h.region_handle(), (256_000u64 << 32) | 256_512);
        assert_eq!(h.position, [128.0, 64.5, 30.0]);
        assert_eq!(h.look_at, [1.0, 0.0, 0.0]);
        assert!(
            parse_home("{'region_handle':[r1.5,r2], 'position':[r0,r0,r0], 'look_at':[r0,r0,r0]}")
                .is_none()
        );
        assert!(parse_home("{'position':[r0,r0,r0]}").is_none());
        assert!(parse_home("garbage").is_none());
    }

    fn success_members() -> BTreeMap<String, LoginValue> {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("login", LoginValue::from("true")),
            ("agent_id", "aaaaaaaa-bbbb-4ccc-8ddd-000000000001".into()),
            ("session_id", "9eab4ebe-ee55-412b-8425-632922b9bf60".into()),
            (
                "secure_session_id",
                "fad22ce8-4a82-4f77-abb2-e778adab6073".into(),
            ),
            ("circuit_code", LoginValue::Int(-2)),
            ("sim_ip", "127.0.0.1".into()),
            ("sim_port", LoginValue::Int(9000)),
            ("region_x", LoginValue::Int(256_000)),
            ("region_y", LoginValue::Int(256_000)),
            (
                "seed_capability",
                "http://127.0.0.1:9000/CAPS/x0000/".into(),
            ),
        ] {
            m.insert(k.to_owned(), v);
        }
        m
    }

    #[test]
    fn minimal_success_and_type_leniency() {
        let mut m = success_members();
        m.insert("max-agent-groups".into(), "not a number".into());
        m.insert("future-thing".into(), LoginValue::Bool(true));
        let LoginReply::Success(r) = LoginReply::from_members(m).unwrap() else {
            panic!("not a success")
        };
        // A negative i4 is OpenSimulator's Int32 cast of a large u32.
        assert_eq!(r.circuit_code, u32::MAX - 1);
        assert_eq!((r.region_size_x, r.region_size_y), (256, 256));
        assert_eq!(r.max_agent_groups, None);
        assert_eq!(
            r.extra["max-agent-groups"],
            LoginValue::from("not a number")
        );
        assert_eq!(r.extra["future-thing"], LoginValue::Bool(true));
        assert!(!r.extra.contains_key("login"));
    }

    #[test]
    fn missing_or_bad_required_members() {
        for (key, bad) in [
            ("agent_id", Some(LoginValue::from("nope"))),
            ("sim_ip", Some(LoginValue::from("host.example"))),
            ("sim_port", Some(LoginValue::Int(70_000))),
            ("sim_port", Some(LoginValue::Int(0))),
            ("circuit_code", Some(LoginValue::Int(1 << 40))),
            ("seed_capability", None),
        ] {
            let mut m = success_members();
            match bad {
                Some(v) => m.insert(key.to_owned(), v),
                None => m.remove(key),
            };
            match LoginReply::from_members(m) {
                Err(LoginError::MalformedResponse(msg)) => assert!(msg.contains(key), "{msg}"),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn refusals_and_redirects() {
        let refusal = |reason: &str, message: &str| {
            let mut m = BTreeMap::new();
            m.insert("login".to_owned(), LoginValue::from("false"));
            m.insert("reason".to_owned(), LoginValue::from(reason));
            m.insert("message".to_owned(), LoginValue::from(message));
            LoginReply::from_members(m).unwrap_err()
        };
        assert!(matches!(
            refusal("key", "Could not authenticate your avatar."),
            LoginError::InvalidCredentials(_)
        ));
        assert!(matches!(
            refusal(
                "key",
                "Incomplete login credentials. Check your username and password."
            ),
            LoginError::InvalidCredentials(_)
        ));
        assert!(matches!(
            refusal(
                "key",
                "Error connecting to the desired location. Try connecting to another region."
            ),
            LoginError::RegionUnavailable(_)
        ));
        assert!(matches!(
            refusal("key", "The region is full"),
            LoginError::RegionFull(_)
        ));
        assert!(matches!(
            refusal(
                "key",
                "The region you are attempting to log into is not responding."
            ),
            LoginError::RegionUnavailable(_)
        ));
        assert!(matches!(
            refusal("key", "The inventory service is not responding."),
            LoginError::ServiceUnavailable(_)
        ));
        assert!(matches!(
            refusal("key", "Region is full"),
            LoginError::RegionFull(_)
        ));
        // A region's own free text for refusing an agent.
        assert!(matches!(
            refusal("key", "You are banned from the region"),
            LoginError::Refused(_)
        ));
        assert!(matches!(
            refusal("presence", "You appear to be already logged in. "),
            LoginError::AlreadyLoggedIn(_)
        ));
        assert!(matches!(
            refusal("presence", "Logins are currently restricted."),
            LoginError::LoginBlocked(_)
        ));
        assert!(matches!(
            refusal("Internal Error", "Error generating Login Response"),
            LoginError::ServerError(_)
        ));
        match refusal("ban", "go away") {
            LoginError::Refused(r) => {
                assert_eq!((r.reason.as_str(), r.message.as_str()), ("ban", "go away"))
            }
            other => panic!("{other:?}"),
        }

        let mut m = BTreeMap::new();
        m.insert("login".to_owned(), LoginValue::from("indeterminate"));
        m.insert("next_url".to_owned(), LoginValue::from("https://x/next"));
        m.insert("next_duration".to_owned(), LoginValue::Int(-4));
        m.insert(
            "next_options".to_owned(),
            LoginValue::Array(vec!["a".into()]),
        );
        let LoginReply::Redirect(r) = LoginReply::from_members(m).unwrap() else {
            panic!()
        };
        assert_eq!(r.next_url, "https://x/next");
        assert_eq!(r.next_method, None);
        assert_eq!(r.next_duration, Some(Duration::ZERO));
        assert_eq!(r.next_options, Some(vec!["a".to_owned()]));

        assert!(matches!(
            LoginReply::from_members(BTreeMap::new()),
            Err(LoginError::MalformedResponse(_))
        ));
    }
}
