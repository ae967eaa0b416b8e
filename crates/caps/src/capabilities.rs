//! The seed capability's request and answer: [`DEFAULT_CAPS`] and [`Capabilities`].

use std::collections::BTreeMap;
use std::fmt;

use isahc::http::Uri;
use opensim_llsd::Value;

use crate::CapsError;

/// The capability names a client asks the seed for by default.
///
/// Every cap OpenSimulator can register that a viewer-like client may use (caps.md, section
/// 1), spelled as viewers spell them. Pure feature flags (`ViewerBenefits`, `VTPBR`,
/// `VETPBR`, `ObjectAnimation`, `ModifyMaterialParams`) are left out on purpose: asking for
/// them changes what the simulator sends over UDP. The seed silently leaves out the names a
/// region does not provide, so asking for more costs nothing.
pub const DEFAULT_CAPS: &[&str] = &[
    "AgentPreferences",
    "AttachmentResources",
    "AvatarPickerSearch",
    "ChatSessionRequest",
    "CopyInventoryFromNotecard",
    "CreateInventoryCategory",
    "DispatchRegionInfo",
    "EnvironmentSettings",
    "EstateAccess",
    "EstateChangeInfo",
    "EventQueueGet",
    "ExtEnvironment",
    "FetchInventory2",
    "FetchInventoryDescendents2",
    "FetchLib2",
    "FetchLibDescendents2",
    "GetDisplayNames",
    "GetMesh",
    "GetMesh2",
    "GetObjectCost",
    "GetObjectPhysicsData",
    "GetTexture",
    "GroupMemberData",
    "HomeLocation",
    "LSLSyntax",
    "LandResources",
    "MapLayer",
    "MeshUploadFlag",
    "NewFileAgentInventory",
    "ObjectAdd",
    "ObjectMedia",
    "ObjectMediaNavigate",
    "ParcelPropertiesUpdate",
    "ParcelVoiceInfoRequest",
    "ProvisionVoiceAccountRequest",
    "RemoteParcelRequest",
    "RenderMaterials",
    "ResourceCostSelected",
    "ServerReleaseNotes",
    "SimConsoleAsync",
    "SimulatorFeatures",
    "UntrustedSimulatorMessage",
    "UpdateAgentInformation",
    "UpdateAgentLanguage",
    "UpdateGestureAgentInventory",
    "UpdateGestureTaskInventory",
    "UpdateNotecardAgentInventory",
    "UpdateNotecardTaskInventory",
    "UpdateScriptAgent",
    "UpdateScriptTask",
    "UpdateSettingsAgentInventory",
    "UpdateSettingsTaskInventory",
    "UploadBakedTexture",
    "UploadObjectAsset",
    "ViewerAsset",
];

/// The body of a seed request: an LLSD XML array of the names.
pub fn seed_request_body<S: AsRef<str>>(names: &[S]) -> Vec<u8> {
    let array = Value::Array(
        names
            .iter()
            .map(|n| Value::String(n.as_ref().to_owned()))
            .collect(),
    );
    opensim_llsd::to_xml(&array)
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host.
///
/// # Errors
/// [`CapsError::InvalidUrl`] otherwise.
pub fn check_url(url: &str) -> Result<(), CapsError> {
    if url.len() > 4096 {
        return Err(CapsError::InvalidUrl("longer than 4096 bytes"));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| CapsError::InvalidUrl("not a URL"))?;
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        _ => return Err(CapsError::InvalidUrl("the scheme is not http or https")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(CapsError::InvalidUrl("no host"));
    }
    Ok(())
}

/// The capabilities a region granted: cap name to URL.
///
/// Only `http(s)` URLs are kept. `Debug` shows the names only: the URLs are secrets that
/// give access to the agent's session, and must stay out of logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    caps: BTreeMap<String, String>,
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.caps.keys()).finish()
    }
}

macro_rules! accessors {
    ($($fn:ident => $name:literal,)*) => {
        impl Capabilities {
            $(
                #[doc = concat!("The `", $name, "` capability URL.")]
                pub fn $fn(&self) -> Option<&str> {
                    self.get($name)
                }
            )*
        }
    };
}

accessors! {
    event_queue_get => "EventQueueGet",
    get_texture => "GetTexture",
    viewer_asset => "ViewerAsset",
    get_mesh => "GetMesh",
    get_mesh2 => "GetMesh2",
    fetch_inventory2 => "FetchInventory2",
    fetch_inventory_descendents2 => "FetchInventoryDescendents2",
    fetch_lib2 => "FetchLib2",
    fetch_lib_descendents2 => "FetchLibDescendents2",
    simulator_features => "SimulatorFeatures",
    get_display_names => "GetDisplayNames",
    untrusted_simulator_message => "UntrustedSimulatorMessage",
    render_materials => "RenderMaterials",
    upload_baked_texture => "UploadBakedTexture",
    new_file_agent_inventory => "NewFileAgentInventory",
    chat_session_request => "ChatSessionRequest",
    parcel_properties_update => "ParcelPropertiesUpdate",
    remote_parcel_request => "RemoteParcelRequest",
    group_member_data => "GroupMemberData",
    create_inventory_category => "CreateInventoryCategory",
    update_agent_information => "UpdateAgentInformation",
    home_location => "HomeLocation",
    map_layer => "MapLayer",
}

impl Capabilities {
    /// No capabilities.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a seed answer: an LLSD map of name to URL string (or `uri`).
    ///
    /// Entries whose value is not an `http(s)` URL are skipped (and logged by name): a
    /// future server may add flags, and a hostile one must not get other URL schemes used.
    ///
    /// # Errors
    /// [`CapsError::UnexpectedReply`] when the answer is not a map.
    pub fn from_llsd(value: &Value) -> Result<Self, CapsError> {
        let map = value.as_map().ok_or_else(|| {
            CapsError::UnexpectedReply(format!(
                "the seed answered {}, not a map",
                value.type_name()
            ))
        })?;
        let mut caps = BTreeMap::new();
        for (name, v) in map {
            match v.as_str().or_else(|| v.as_uri()) {
                Some(url) if check_url(url).is_ok() => {
                    caps.insert(name.to_owned(), url.to_owned());
                }
                _ => tracing::warn!(cap = name, kind = v.type_name(), "seed entry skipped"),
            }
        }
        Ok(Self { caps })
    }

    /// Adds or replaces a capability.
    ///
    /// # Errors
    /// [`CapsError::InvalidUrl`] when `url` is not an `http(s)` URL.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        url: impl Into<String>,
    ) -> Result<(), CapsError> {
        let url = url.into();
        check_url(&url)?;
        self.caps.insert(name.into(), url);
        Ok(())
    }

    /// The URL of the capability `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.caps.get(name).map(String::as_str)
    }

    /// Whether the region granted `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.caps.contains_key(name)
    }

    /// How many capabilities were granted.
    pub fn len(&self) -> usize {
        self.caps.len()
    }

    /// Whether none was granted.
    pub fn is_empty(&self) -> bool {
        self.caps.is_empty()
    }

    /// The granted names, sorted.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.caps.keys().map(String::as_str)
    }

    /// Name and URL pairs, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.caps.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Where to download textures: `GetTexture`, else `ViewerAsset` (both take
    /// `?texture_id=`).
    pub fn texture_url(&self) -> Option<&str> {
        self.get_texture().or_else(|| self.viewer_asset())
    }

    /// Where to download mesh: `GetMesh2`, else `GetMesh`, else `ViewerAsset` (all take
    /// `?mesh_id=`).
    pub fn mesh_url(&self) -> Option<&str> {
        self.get_mesh2()
            .or_else(|| self.get_mesh())
            .or_else(|| self.viewer_asset())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_other_than_http_are_refused() {
        for good in [
            "http://127.0.0.1:9000/CAPS/abc0000/",
            "HTTPS://grid.example/x?y=1",
        ] {
            check_url(good).unwrap();
        }
        for bad in [
            "file:///etc/passwd",
            "ftp://host/x",
            "/relative/path",
            "http://",
            "gopher://h/",
            "not a url",
            "",
        ] {
            assert!(
                matches!(check_url(bad), Err(CapsError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn seed_answer_keeps_http_urls_only_and_hides_them_in_debug() {
        let v = opensim_llsd::from_xml(
            b"<llsd><map><key>GetTexture</key><string>http://h:9000/t</string>\
              <key>EventQueueGet</key><uri>http://h:9000/CE/q</uri>\
              <key>Evil</key><string>file:///etc/passwd</string>\
              <key>Flag</key><boolean>1</boolean></map></llsd>",
        )
        .unwrap();
        let caps = Capabilities::from_llsd(&v).unwrap();
        assert_eq!(caps.len(), 2);
        assert_eq!(caps.get_texture(), Some("http://h:9000/t"));
        assert_eq!(caps.texture_url(), Some("http://h:9000/t"));
        assert_eq!(caps.event_queue_get(), Some("http://h:9000/CE/q"));
        assert!(!caps.contains("Evil") && !caps.contains("Flag"));
        assert_eq!(caps.mesh_url(), None);
        let shown = format!("{caps:?}");
        assert_eq!(shown, r#"{"EventQueueGet", "GetTexture"}"#);

        assert!(matches!(
            Capabilities::from_llsd(&Value::Array(vec![])),
            Err(CapsError::UnexpectedReply(_))
        ));
    }

    #[test]
    fn seed_body_is_an_llsd_array_of_names() {
        let body = seed_request_body(&["EventQueueGet", "GetTexture"]);
        let v = opensim_llsd::from_xml(&body).unwrap();
        assert_eq!(
            v,
            Value::Array(vec!["EventQueueGet".into(), "GetTexture".into()])
        );
    }

    #[test]
    fn default_caps_are_sorted_and_unique() {
        assert!(DEFAULT_CAPS.windows(2).all(|w| w[0] < w[1]));
    }
}
