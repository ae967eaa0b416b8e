//! The [`Client`]: HTTP clients and settings shared by many sessions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use opensim_caps::CapsClient;
use opensim_login::{LoginClient, LoginParams};
use opensim_textures::{HttpConfig, TextureHttp};

use crate::config::ClientConfig;
use crate::error::{ClientError, TextureError};
use crate::session::Session;

/// What every session of a client shares.
pub(crate) struct ClientInner {
    pub(crate) config: ClientConfig,
    pub(crate) login: LoginClient,
    pub(crate) caps: CapsClient,
    pub(crate) http: TextureHttp,
}

/// Logs in and makes [`Session`]s; cheap to clone.
///
/// One client holds one connection pool for login, capabilities, event queues and textures,
/// shared by all its sessions: a bot swarm uses one client for all its bots.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with these settings.
    ///
    /// # Errors
    /// When an HTTP client cannot be built (e.g. a malformed proxy URL).
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let mut login = LoginClient::builder().timeout(config.timeout);
        let mut caps = CapsClient::builder();
        let mut http_config = HttpConfig::default();
        if let Some(proxy) = &config.http_proxy {
            login = login.proxy(proxy);
            caps = caps.proxy(proxy);
            http_config.proxy = Some(proxy.clone());
        }
        let login = login.build()?;
        let caps = caps.build()?;
        let http = TextureHttp::new(http_config).map_err(TextureError::from)?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                config,
                login,
                caps,
                http,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Logs in (XML-RPC), opens the circuit to the login region (`UseCircuitCode`,
    /// `CompleteAgentMovement`) and starts the session's tasks. The region is usable once
    /// [`Session::wait_region_ready`] returns.
    ///
    /// # Errors
    /// [`ClientError::Login`] with the grid's own message when it refuses (wrong password ...)
    /// or cannot be reached, [`ClientError::Timeout`] past [`ClientConfig::timeout`], and
    /// socket errors.
    pub async fn login(&self, params: &LoginParams) -> Result<Session, ClientError> {
        let response = deadline(
            self.inner.config.timeout,
            "login",
            self.inner.login.login(params),
        )
        .await??;
        Session::start(self.inner.clone(), response).await
    }
}

/// `f`, or [`ClientError::Timeout`] after `d`.
pub(crate) async fn deadline<T>(
    d: Duration,
    what: &'static str,
    f: impl Future<Output = T>,
) -> Result<T, ClientError> {
    futures_lite::future::or(async { Ok(f.await) }, async {
        async_io::Timer::after(d).await;
        Err(ClientError::Timeout(what))
    })
    .await
}
