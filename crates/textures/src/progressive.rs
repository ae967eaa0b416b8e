//! Progressive texture downloads: fetch just the bytes a discard level needs, and later only
//! the missing bytes of a sharper level.
//!
//! A [`TextureDownload`] holds the prefix of one codestream received so far. Asking a
//! [`ProgressiveFetcher`] for discard level `d` (resolution divided by `2^d`):
//!
//! 1. starts from the on-disk [`TextureCache`] entry, if there is one;
//! 2. if nothing is held, sends a header probe: `Range: bytes=0-<probe-1>` (1000 bytes by
//!    default, more than the viewer's 600-byte first packet, so the main header and the first
//!    packets of typical textures come in); its `Content-Range` tells the total size;
//! 3. parses the prefix and walks its packets ([`Codestream::budget`]). When the figure for
//!    level `d` is exact, fetches exactly the rest of it (or to the end of the file when
//!    that is within [`ProgressiveConfig::tail_slack`] bytes). While it is still
//!    [`Exactness::Incomplete`] (the packets that decide it lie beyond the prefix), fetches
//!    the next step (for level 0, simply the rest of the file): up to the end of the packet
//!    the prefix stops in ([`Budget::pending_packet_end`](crate::Budget::pending_packet_end))
//!    plus a lookahead
//!    that grows with the prefix (a quarter of it by default, between 600 bytes and 16 KiB).
//!    So the bytes fetched overshoot the exact need by at most one lookahead, at the cost of a
//!    few round trips; the lookahead settings trade one against the other;
//! 4. appends every part to the cache entry ([`TextureCache::extend`]) and reports progress
//!    events ([`ProgressEvent`]).
//!
//! No byte is fetched twice: a later call for a sharper level starts from what is held.
//! OpenSimulator's range quirks are absorbed: a `200` (whole file) instead of a `206` replaces
//! the prefix, and a range running over the end is clipped by the server, which tells the
//! total.

use std::sync::Arc;

use uuid::Uuid;

use crate::cache::{CacheError, TextureCache};
use crate::codestream::{Codestream, CodestreamError, Exactness, Limits};
use crate::http::{ByteRange, HttpFetchError, RangeBody, TextureHttp};

/// Settings of a [`ProgressiveFetcher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressiveConfig {
    /// Size of the first request when nothing is held (at least the 600-byte header the
    /// viewer assumes).
    pub probe_bytes: u64,
    /// Smallest lookahead beyond the known need while the need is not known exactly.
    pub lookahead_min: u64,
    /// Largest lookahead.
    pub lookahead_max: u64,
    /// Lookahead = prefix held / this (then clamped to `lookahead_min..=lookahead_max`).
    pub lookahead_divisor: u64,
    /// When a level needs all but at most this many bytes, fetch to the end (the end-of-
    /// codestream marker and trailing bytes) so that the cached entry is complete.
    pub tail_slack: u64,
    /// Most HTTP requests one call may send (guards against a server that feeds a byte at a
    /// time).
    pub max_requests: u32,
    /// Header limits for parsing.
    pub limits: Limits,
}

impl Default for ProgressiveConfig {
    fn default() -> Self {
        ProgressiveConfig {
            probe_bytes: 1000,
            lookahead_min: 600,
            lookahead_max: 16 * 1024,
            lookahead_divisor: 4,
            tail_slack: 64,
            max_requests: 128,
            limits: Limits::default(),
        }
    }
}

impl ProgressiveConfig {
    /// The fewest bytes: a fixed lookahead of `probe_bytes`, so a level costs at most that
    /// much beyond its exact need (more round trips than the default).
    pub fn tight() -> Self {
        let d = ProgressiveConfig::default();
        ProgressiveConfig {
            lookahead_min: d.probe_bytes,
            lookahead_max: d.probe_bytes,
            ..d
        }
    }

    fn lookahead(&self, have: u64) -> u64 {
        let min = self.lookahead_min.max(1);
        (have / self.lookahead_divisor.max(1)).clamp(min, self.lookahead_max.max(min))
    }
}

/// Progress of a download, for a UI.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// Bytes arrived: the prefix now reaches `have` bytes; the current step aims at
    /// `expected` bytes (the exact need once known, else the step's end).
    Received {
        /// The texture.
        id: Uuid,
        /// Length of the contiguous prefix held.
        have: u64,
        /// Length the current step aims at.
        expected: u64,
        /// Total size of the asset, once known.
        total: Option<u64>,
    },
    /// The prefix now decodes exactly at `discard` (and every coarser level).
    LevelReached {
        /// The texture.
        id: Uuid,
        /// The finest discard level the prefix decodes exactly.
        discard: u8,
        /// Length of the prefix held.
        have: u64,
    },
    /// The whole asset is held.
    Complete {
        /// The texture.
        id: Uuid,
        /// Its size.
        total: u64,
    },
    /// Writing to the on-disk cache failed; the download goes on without it.
    CacheFailed {
        /// The texture.
        id: Uuid,
        /// What went wrong.
        error: String,
    },
}

/// Why a progressive download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProgressiveError {
    /// The server has no such texture.
    #[error("texture {id} not found")]
    NotFound {
        /// The texture.
        id: Uuid,
    },
    /// The HTTP exchange failed.
    #[error(transparent)]
    Http(HttpFetchError),
    /// The bytes received are not a codestream this crate can read (malformed data).
    #[error("texture {id}: {source}")]
    Codestream {
        /// The texture.
        id: Uuid,
        /// What is wrong with it.
        #[source]
        source: CodestreamError,
    },
    /// The server contradicted itself (a total size or bytes that changed between requests).
    #[error("texture {id}: inconsistent server: {reason}")]
    Inconsistent {
        /// The texture.
        id: Uuid,
        /// What did not match.
        reason: String,
    },
    /// More than [`ProgressiveConfig::max_requests`] requests were needed in one call.
    #[error("texture {id}: gave up after {requests} requests")]
    TooManyRequests {
        /// The texture.
        id: Uuid,
        /// Requests sent.
        requests: u32,
    },
}

impl ProgressiveError {
    fn from_http(id: Uuid, e: HttpFetchError) -> Self {
        match e {
            HttpFetchError::NotFound { .. } => ProgressiveError::NotFound { id },
            e => ProgressiveError::Http(e),
        }
    }
}

/// What one [`ProgressiveFetcher::fetch_level`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelReport {
    /// The discard level asked for, clamped to the image's largest.
    pub discard: u8,
    /// The finest level the prefix now decodes exactly (`None` if the codestream cannot be
    /// walked and is not complete).
    pub reached: Option<u8>,
    /// Prefix length the level needs (the whole file when it cannot be worked out).
    pub needed: u64,
    /// Length of the prefix held afterwards.
    pub have: u64,
    /// Bytes received over HTTP in this call.
    pub fetched: u64,
    /// HTTP requests sent in this call.
    pub requests: u32,
    /// Bytes taken from the on-disk cache in this call.
    pub from_cache: u64,
}

/// The prefix of one texture held so far, with its download statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextureDownload {
    id: Uuid,
    data: Vec<u8>,
    total: Option<u64>,
    reached: Option<u8>,
    fetched: u64,
    requests: u32,
    cache_checked: bool,
    reports: Vec<LevelReport>,
}

impl TextureDownload {
    /// Nothing held yet.
    pub fn new(id: Uuid) -> Self {
        TextureDownload {
            id,
            data: Vec::new(),
            total: None,
            reached: None,
            fetched: 0,
            requests: 0,
            cache_checked: false,
            reports: Vec::new(),
        }
    }

    /// Starts from a prefix obtained elsewhere (for example over UDP).
    pub fn with_prefix(id: Uuid, data: Vec<u8>, total: Option<u64>) -> Self {
        TextureDownload {
            data,
            total,
            ..TextureDownload::new(id)
        }
    }

    /// The texture id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The bytes held, from the start of the codestream.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the bytes held.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Total size of the asset, once known.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Whether the whole asset is held.
    pub fn is_complete(&self) -> bool {
        self.total == Some(self.data.len() as u64)
    }

    /// The finest discard level the prefix decodes exactly, as of the last call.
    pub fn reached(&self) -> Option<u8> {
        self.reached
    }

    /// Bytes received over HTTP over all calls.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched
    }

    /// HTTP requests sent over all calls.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// One report per [`ProgressiveFetcher::fetch_level`] call, oldest first.
    pub fn reports(&self) -> &[LevelReport] {
        &self.reports
    }

    /// Takes in one response. A `206` must continue the prefix (the HTTP layer checked that
    /// it starts where it was asked to); a `200` is the whole file and replaces it.
    fn absorb(&mut self, body: &RangeBody) -> Result<(), ProgressiveError> {
        let inconsistent = |reason: String| ProgressiveError::Inconsistent {
            id: self.id,
            reason,
        };
        if let (Some(t), Some(known)) = (body.total, self.total)
            && t != known
        {
            return Err(inconsistent(format!(
                "total size changed from {known} to {t}"
            )));
        }
        if body.partial {
            if body.offset != self.data.len() as u64 {
                return Err(inconsistent(format!(
                    "part at {} does not continue a prefix of {}",
                    body.offset,
                    self.data.len()
                )));
            }
            self.data.extend_from_slice(&body.data);
            if body.total.is_some() {
                self.total = body.total;
            }
        } else {
            if !body.data.starts_with(&self.data) {
                return Err(inconsistent(
                    "the whole file differs from the bytes held".into(),
                ));
            }
            self.data.clear();
            self.data.extend_from_slice(&body.data);
            self.total = Some(body.data.len() as u64);
        }
        if let Some(t) = self.total
            && self.data.len() as u64 > t
        {
            return Err(inconsistent(format!(
                "{} bytes received for a total of {t}",
                self.data.len()
            )));
        }
        Ok(())
    }
}

/// What to do next for a level.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// The level asked for, clamped.
    discard: u8,
    /// The finest level held exactly.
    reached: Option<u8>,
    /// The exact need, once known.
    needed: Option<u64>,
    /// The request to send, if any.
    next: Option<ByteRange>,
    /// Where the request aims (for progress events).
    target: u64,
}

/// Fetches textures progressively through one capability URL, optionally with an on-disk
/// cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProgressiveFetcher {
    http: TextureHttp,
    cap: Arc<str>,
    cache: Option<Arc<TextureCache>>,
    config: ProgressiveConfig,
}

/// Receives [`ProgressEvent`]s (a closure; forward to a channel with `try_send` for a UI on
/// another task).
pub type OnProgress<'a> = &'a mut (dyn FnMut(&ProgressEvent) + Send);

impl ProgressiveFetcher {
    /// Fetches through `cap` (a `GetTexture` or `ViewerAsset` capability URL).
    pub fn new(http: TextureHttp, cap: &str) -> Self {
        ProgressiveFetcher {
            http,
            cap: cap.into(),
            cache: None,
            config: ProgressiveConfig::default(),
        }
    }

    /// Reads from and writes to `cache`.
    pub fn with_cache(mut self, cache: Arc<TextureCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Replaces the settings.
    pub fn with_config(mut self, config: ProgressiveConfig) -> Self {
        self.config = config;
        self
    }

    /// The settings.
    pub fn config(&self) -> &ProgressiveConfig {
        &self.config
    }

    /// Fetches texture `id` at `discard` from scratch (or from the cache).
    ///
    /// # Errors
    /// See [`fetch_level`](Self::fetch_level).
    pub async fn fetch(
        &self,
        id: Uuid,
        discard: u8,
        on_progress: OnProgress<'_>,
    ) -> Result<TextureDownload, ProgressiveError> {
        let mut dl = TextureDownload::new(id);
        self.fetch_level(&mut dl, discard, on_progress).await?;
        Ok(dl)
    }

    /// Extends `dl` until it decodes exactly at `discard` (clamped to the image's largest
    /// level), fetching only missing bytes.
    ///
    /// # Errors
    /// [`ProgressiveError::NotFound`] for a missing texture; HTTP failures (after the
    /// retries of the [`TextureHttp`]); malformed or inconsistent data.
    pub async fn fetch_level(
        &self,
        dl: &mut TextureDownload,
        discard: u8,
        on_progress: OnProgress<'_>,
    ) -> Result<LevelReport, ProgressiveError> {
        self.run(dl, Some(discard), on_progress).await
    }

    /// Extends `dl` to the whole file.
    ///
    /// # Errors
    /// As [`fetch_level`](Self::fetch_level).
    pub async fn fetch_complete(
        &self,
        dl: &mut TextureDownload,
        on_progress: OnProgress<'_>,
    ) -> Result<LevelReport, ProgressiveError> {
        self.run(dl, None, on_progress).await
    }

    async fn run(
        &self,
        dl: &mut TextureDownload,
        discard: Option<u8>,
        on_progress: OnProgress<'_>,
    ) -> Result<LevelReport, ProgressiveError> {
        let id = dl.id;
        let from_cache = self.load_cached(dl).await;
        let (fetched0, requests0) = (dl.fetched, dl.requests);
        let mut reported = dl.reached;
        loop {
            let plan = self.plan(dl, discard)?;
            if plan.reached.is_some() && plan.reached != reported {
                reported = plan.reached;
                if let Some(d) = plan.reached {
                    on_progress(&ProgressEvent::LevelReached {
                        id,
                        discard: d,
                        have: dl.data.len() as u64,
                    });
                }
            }
            dl.reached = plan.reached;
            let Some(range) = plan.next else {
                if let Some(total) = dl.total.filter(|_| dl.is_complete()) {
                    on_progress(&ProgressEvent::Complete { id, total });
                }
                let report = LevelReport {
                    discard: plan.discard,
                    reached: plan.reached,
                    needed: plan.needed.unwrap_or(dl.data.len() as u64),
                    have: dl.data.len() as u64,
                    fetched: dl.fetched - fetched0,
                    requests: dl.requests - requests0,
                    from_cache,
                };
                dl.reports.push(report);
                return Ok(report);
            };
            let sent = dl.requests - requests0;
            if sent >= self.config.max_requests {
                return Err(ProgressiveError::TooManyRequests { id, requests: sent });
            }
            dl.requests += 1;
            let start = range.first();
            let total = dl.total;
            let target = plan.target;
            let mut chunk_progress = |got: u64, _: Option<u64>| {
                on_progress(&ProgressEvent::Received {
                    id,
                    have: start + got,
                    expected: target,
                    total,
                });
            };
            let body = self
                .http
                .fetch_with_progress(&self.cap, id, range, &mut chunk_progress)
                .await
                .map_err(|e| ProgressiveError::from_http(id, e))?;
            dl.fetched += body.data.len() as u64;
            let whole = !body.partial;
            dl.absorb(&body)?;
            if let Some(error) = self.store(dl, body, whole).await {
                on_progress(&ProgressEvent::CacheFailed { id, error });
            }
        }
    }

    /// Decides the next request for `discard` (`None` = the whole file).
    fn plan(&self, dl: &TextureDownload, discard: Option<u8>) -> Result<Plan, ProgressiveError> {
        let cfg = &self.config;
        let have = dl.data.len() as u64;
        let complete = dl.is_complete();
        let mut plan = Plan {
            discard: discard.unwrap_or(0),
            reached: None,
            needed: None,
            next: None,
            target: dl.total.unwrap_or(have),
        };
        if have == 0 {
            plan.target = cfg.probe_bytes.max(1);
            plan.next = ByteRange::between(0, plan.target);
            return Ok(plan);
        }
        // The prefix length to reach, or `None` for "to the end".
        let target: Option<u64> = match Codestream::parse(&dl.data, &cfg.limits) {
            Err(CodestreamError::Truncated { needed, .. }) if !complete => {
                Some((needed as u64).max(have + cfg.lookahead(have)))
            }
            Err(source) => return Err(ProgressiveError::Codestream { id: dl.id, source }),
            Ok(cs) => {
                let budget = cs.budget();
                let d = plan.discard.min(budget.max_discard());
                plan.discard = d;
                plan.reached = if complete {
                    Some(0)
                } else {
                    budget.best_discard_within(have)
                };
                match (discard, budget.level(d).map(|l| (l.exactness, l.bytes))) {
                    (None, _) => None,
                    // Full resolution needs about every packet: take the rest in one go.
                    (Some(0), Some((exactness, bytes)))
                        if !exactness.is_exact() || bytes > have =>
                    {
                        if exactness.is_exact() {
                            plan.needed = Some(bytes);
                        }
                        None
                    }
                    (Some(_), Some((Exactness::Exact, bytes))) => {
                        plan.needed = Some(bytes);
                        let near_end = dl
                            .total
                            .is_some_and(|t| t.saturating_sub(bytes) <= cfg.tail_slack);
                        if near_end {
                            None
                        } else if bytes <= have {
                            return Ok(plan);
                        } else {
                            Some(bytes)
                        }
                    }
                    (Some(_), Some((Exactness::Incomplete, _))) => {
                        let from = budget.pending_packet_end.unwrap_or(have).max(have);
                        Some(from + cfg.lookahead(have))
                    }
                    // The packets cannot be followed: only the whole file is safe.
                    (Some(_), _) => None,
                }
            }
        };
        if complete {
            plan.needed = plan.needed.or(dl.total);
            return Ok(plan);
        }
        let end = match (target, dl.total) {
            (Some(t), Some(total)) => Some(t.min(total)),
            (Some(t), None) => Some(t),
            (None, total) => total,
        };
        plan.next = match end {
            Some(end) => {
                plan.target = end;
                ByteRange::between(have, end)
            }
            None => Some(ByteRange::From(have)),
        };
        if plan.next.is_none() {
            // Nothing left to ask for although the level is not reached: the file is shorter
            // than its own packets say.
            return Err(ProgressiveError::Inconsistent {
                id: dl.id,
                reason: "the file ends before the packets it declares".into(),
            });
        }
        Ok(plan)
    }

    /// Adopts the cached prefix when it is longer than what is held. Returns the bytes taken.
    async fn load_cached(&self, dl: &mut TextureDownload) -> u64 {
        let Some(cache) = self.cache.clone() else {
            return 0;
        };
        if dl.cache_checked || dl.is_complete() {
            return 0;
        }
        dl.cache_checked = true;
        let id = dl.id;
        let Ok(Some(entry)) = blocking::unblock(move || cache.get(id)).await else {
            return 0;
        };
        let consistent = entry.data.starts_with(&dl.data)
            && (dl.total.is_none() || entry.total_size.is_none() || dl.total == entry.total_size);
        if !consistent || entry.data.len() <= dl.data.len() {
            return 0;
        }
        let gained = (entry.data.len() - dl.data.len()) as u64;
        dl.data = entry.data;
        dl.total = dl.total.or(entry.total_size);
        gained
    }

    /// Appends what `body` brought to the cache entry; returns the error text on failure.
    async fn store(&self, dl: &TextureDownload, body: RangeBody, whole: bool) -> Option<String> {
        let cache = self.cache.clone()?;
        let id = dl.id;
        let total = dl.total;
        let result = if whole {
            blocking::unblock(move || cache.put(id, &body.data, total)).await
        } else {
            let fallback = Arc::clone(&cache);
            match blocking::unblock(move || cache.extend(id, body.offset, &body.data, total)).await
            {
                // The entry was evicted or never written: store the whole prefix instead.
                Err(CacheError::NotContiguous { .. }) => {
                    let data = dl.data.clone();
                    blocking::unblock(move || fallback.put(id, &data, total)).await
                }
                other => other.map(|_| ()),
            }
        };
        result.err().map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookahead_grows_and_is_bounded() {
        let c = ProgressiveConfig::default();
        assert_eq!(c.lookahead(0), 600);
        assert_eq!(c.lookahead(8000), 2000);
        assert_eq!(c.lookahead(1 << 30), 16 * 1024);
        let t = ProgressiveConfig::tight();
        assert_eq!(t.lookahead(0), 1000);
        assert_eq!(t.lookahead(1 << 30), 1000);
        let odd = ProgressiveConfig {
            lookahead_min: 0,
            lookahead_max: 0,
            lookahead_divisor: 0,
            ..c
        };
        assert_eq!(odd.lookahead(10), 1);
    }

    #[test]
    fn absorb_rejects_contradictions() {
        let id = Uuid::nil();
        let mut dl = TextureDownload::new(id);
        let part = |offset: u64, data: &[u8], total| RangeBody {
            offset,
            data: data.to_vec(),
            total,
            partial: true,
        };
        dl.absorb(&part(0, b"abc", Some(6))).expect("first part");
        assert!(dl.absorb(&part(3, b"d", Some(7))).is_err(), "total changed");
        assert!(
            dl.absorb(&part(2, b"d", Some(6))).is_err(),
            "gap or overlap"
        );
        assert!(
            dl.absorb(&part(3, b"defg", Some(6))).is_err(),
            "beyond total"
        );
        let mut dl = TextureDownload::new(id);
        dl.absorb(&part(0, b"abc", Some(6))).expect("first part");
        let whole = RangeBody {
            offset: 0,
            data: b"abXdef".to_vec(),
            total: Some(6),
            partial: false,
        };
        assert!(dl.absorb(&whole).is_err(), "whole file differs from prefix");
        let whole = RangeBody {
            data: b"abcdef".to_vec(),
            ..whole
        };
        dl.absorb(&whole).expect("whole file");
        assert!(dl.is_complete());
    }
}
