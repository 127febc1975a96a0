//! A client's session: the engine session (its `SET`s and temporary tables)
//! that every call made with one login token shares. It is made by the
//! login's first statement that may change it (`SET`, DDL): until then the
//! login reads through the server's engine, which is what a session nothing
//! changed is, so a dashboard that logs in for each query costs no session
//! (each holds a copy of the engine's settings and function registry). It
//! goes when its token expires.

use std::sync::{Arc, OnceLock};

use crate::query_engine::SharedEngine;

/// One login's engine session, made from the server's engine when first used.
#[derive(Clone, Default)]
pub(crate) struct Session(Arc<OnceLock<SharedEngine>>);

impl Session {
    /// The engine this login reads through: its session's once it has one,
    /// else `engine`.
    pub(crate) fn engine(&self, engine: &SharedEngine) -> SharedEngine {
        Arc::clone(self.0.get().unwrap_or(engine))
    }

    /// The session's engine, made from `engine` now if need be: for a
    /// statement that may change the session.
    pub(crate) fn start(&self, engine: &SharedEngine) -> SharedEngine {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_login_reads_through_the_server_until_it_changes_its_session() {
        let config = audience_engine::EngineConfig::default();
        let server: SharedEngine = Arc::new(audience_engine::Engine::start(&config).await.unwrap());
        let session = Session::default();
        assert!(Arc::ptr_eq(&session.engine(&server), &server));
        assert!(session.0.get().is_none(), "reading started a session");
        let started = session.start(&server);
        assert!(!Arc::ptr_eq(&started, &server));
        assert!(Arc::ptr_eq(&session.engine(&server), &started));
        assert!(Arc::ptr_eq(&session.start(&server), &started));
    }
}
