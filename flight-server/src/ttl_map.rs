//! Server-side handles (tickets, prepared statements, bearer tokens) that
//! expire when left idle, so clients that never close them cannot exhaust memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A map from random handles to values that expire `ttl` after their last use.
#[derive(Debug)]
pub(crate) struct TtlMap<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V> TtlMap<V> {
    /// An empty map whose entries live `ttl` after their last use.
    pub(crate) fn new(ttl: Duration) -> Self {
        TtlMap {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Stores `value` under a new unguessable handle, dropping expired entries.
    pub(crate) fn insert(&self, value: V) -> String {
        let handle = random_handle();
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, (_, used)| now.duration_since(*used) < self.ttl);
        entries.insert(handle.clone(), (value, now));
        handle
    }

    /// Removes and returns the value under `handle`, if live.
    pub(crate) fn take(&self, handle: &str) -> Option<V> {
        let (value, used) = self.lock().remove(handle)?;
        (used.elapsed() < self.ttl).then_some(value)
    }

    /// `read` of the value under `handle`, if live, without refreshing it.
    pub(crate) fn get_with<R>(&self, handle: &str, read: impl FnOnce(&V) -> R) -> Option<R> {
        let entries = self.lock();
        let (value, used) = entries.get(handle)?;
        (used.elapsed() < self.ttl).then(|| read(value))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (V, Instant)>> {
        // a panic while holding the lock cannot leave the map half-updated
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<V: Clone> TtlMap<V> {
    /// The value under `handle`, refreshing its lifetime; `None` if unknown or expired.
    pub(crate) fn get(&self, handle: &str) -> Option<V> {
        let now = Instant::now();
        let mut entries = self.lock();
        match entries.get_mut(handle) {
            Some((value, used)) if now.duration_since(*used) < self.ttl => {
                *used = now;
                Some(value.clone())
            }
            Some(_) => {
                entries.remove(handle);
                None
            }
            None => None,
        }
    }

    /// Replaces the value under a live `handle`; false if it is gone.
    pub(crate) fn update(&self, handle: &str, value: V) -> bool {
        match self.lock().get_mut(handle) {
            Some(entry) => {
                *entry = (value, Instant::now());
                true
            }
            None => false,
        }
    }
}

/// 256 random bits as URL-safe text: handles, tokens, generated passwords.
pub fn random_handle() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS random source"); // ok: without it no secret is safe to hand out
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_when_idle() {
        let map = TtlMap::new(Duration::from_millis(50));
        let a = map.insert(1);
        assert_eq!(map.get(&a), Some(1));
        assert!(map.update(&a, 2));
        assert_eq!(map.get(&a), Some(2));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(map.get(&a), None);
        let b = map.insert(3);
        assert_ne!(a, b);
        assert_eq!(map.take(&b), Some(3));
        assert_eq!(map.get(&b), None);
    }
}
