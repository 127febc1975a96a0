//! A client's session: the engine session (its `SET`s and temporary tables)
//! that every call made with one login token shares. It is made at its first
//! use, so a login that only reads metadata costs nothing, and it goes when
//! its token expires.

use std::sync::{Arc, OnceLock};

use crate::query_engine::SharedEngine;

/// One login's engine session, made from the server's engine when first used.
#[derive(Clone, Default)]
pub(crate) struct Session(Arc<OnceLock<SharedEngine>>);

impl Session {
    /// The session's engine, made from `engine` on first use.
    pub(crate) fn engine(&self, engine: &SharedEngine) -> SharedEngine {
        Arc::clone(self.0.get_or_init(|| engine.session()))
    }
}

/// The same session, not an equal one.
impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Session {}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = if self.0.get().is_some() {
            "started"
        } else {
            "not started"
        };
        f.debug_tuple("Session").field(&started).finish()
    }
}
