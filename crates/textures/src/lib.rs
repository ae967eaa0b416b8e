//! JPEG 2000 texture support for OpenSimulator / Second Life clients.
//!
//! Textures travel as raw JPEG 2000 codestreams (`.j2c`). This crate holds a texture
//! pipeline: parsing and decoding, caching, and the two ways of fetching.
//!
//! * [`codestream`]: a zero-copy, bounds-checked parser of the codestream header, and a
//!   tier-2 packet walk that tells how many leading bytes are needed for each discard level
//!   (resolution divided by `2^d`) and each number of quality layers ([`Codestream::budget`]).
//!   A fetcher uses it to ask for just enough bytes (HTTP `Range`, or UDP `DiscardLevel`).
//! * [`decode`]: decoding with OpenJPEG (through the `jpeg2k` crate) into RGBA8 at a given
//!   discard level, also from a partial stream, with an async helper that runs on a blocking
//!   thread pool.
//! * [`cache`]: an on-disk cache of whole or partial codestreams keyed by asset UUID.
//! * [`http`]: `GetTexture` / `ViewerAsset` requests with byte ranges, retries and a shared
//!   concurrency limit ([`TextureHttp`]), following OpenSimulator's range quirks.
//! * [`progressive`]: fetch exactly the bytes a discard level needs, then only the missing
//!   bytes of a sharper one, through the cache, with progress events ([`ProgressiveFetcher`]).
//! * [`udp`]: the LLUDP image pipeline without I/O: the client reassembly state machine
//!   ([`UdpImageClient`]) and OpenSimulator's server-side image queue ([`ImageSender`]).
//!
//! ```no_run
//! use opensim_textures::{Codestream, Limits, decode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = std::fs::read("plywood.j2c")?;
//! let cs = Codestream::parse(&bytes, &Limits::default())?;
//! let budget = cs.budget();
//! // How many bytes the smallest image needs, e.g. to fetch with `Range: bytes=0-N`.
//! let smallest = budget.max_discard();
//! println!("discard {smallest}: {:?} bytes", budget.bytes_for_discard(smallest));
//! let image = decode::decode_rgba8(&bytes, 2)?;
//! assert_eq!(image.pixels.len(), image.width as usize * image.height as usize * 4);
//! # Ok(())
//! # }
//! ```
//!
//! Fetching over HTTP, progressively (on any executor; `smol::block_on` for sync callers):
//!
//! ```no_run
//! use opensim_textures::{HttpConfig, ProgressiveFetcher, TextureHttp};
//!
//! # async fn run(cap_url: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let http = TextureHttp::new(HttpConfig::default())?;
//! let fetcher = ProgressiveFetcher::new(http, cap_url);
//! let id = uuid::Uuid::parse_str("89556747-24cb-43ed-920b-47caed15465f")?;
//! // A quick 128x128 first (discard 2), then the full image: only the missing bytes move.
//! let mut dl = fetcher.fetch(id, 2, &mut |event| println!("{event:?}")).await?;
//! let small = opensim_textures::decode_rgba8(dl.data(), 2)?;
//! fetcher.fetch_level(&mut dl, 0, &mut |_| {}).await?;
//! println!("{}x{} then {} bytes in all", small.width, small.height, dl.bytes_fetched());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod cache;
pub mod codestream;
pub mod decode;
pub mod http;
pub mod progressive;
pub mod udp;

pub use cache::{CacheError, CachedTexture, TextureCache};
pub use codestream::{
    Budget, Codestream, CodestreamError, EstimateReason, Exactness, Header, LayerBudget,
    LevelBudget, Limits,
};
pub use decode::{DecodeError, DecodeOptions, Rgba8Image, decode_rgba8, decode_rgba8_async};
pub use http::{ByteRange, HttpConfig, HttpFetchError, RangeBody, RetryPolicy, TextureHttp};
pub use progressive::{
    LevelReport, ProgressEvent, ProgressiveConfig, ProgressiveError, ProgressiveFetcher,
    TextureDownload,
};
pub use udp::{ImageRequest, ImageSender, ImageType, Target, UdpConfig, UdpEvent, UdpImageClient};
