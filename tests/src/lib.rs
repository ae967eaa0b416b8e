//! End-to-end tests of the opensim-networking workspace, in `tests/tests/`.
//!
//! They cross crate boundaries the way a client does: a whole captured session replayed
//! through the codec, the login parser and the region state, and (as the simulator and client
//! land) runs against the loopback simulator. Run them with `cargo test -p opensim-e2e`.

#![forbid(unsafe_code)]
