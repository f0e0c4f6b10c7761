//! Deduplication of side-effecting requests by `idempotencyKey`.
//!
//! A retried request (same method, same key) gets the first call's result instead of
//! running again; a retry that arrives while the first call still runs waits for it.
//! Entries live for five minutes and at most 1,000 are kept, as in OpenClaw.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::registry::MethodResult;

pub const TTL: Duration = Duration::from_secs(5 * 60);
pub const CAPACITY: usize = 1000;
/// How long a retry waits for the first call with the same key before giving up.
pub const WAIT_FOR_FIRST_CALL: Duration = Duration::from_secs(60);

/// What the caller must do with a request.
#[derive(Debug, PartialEq)]
pub enum Begin<W> {
    /// First time this key is seen: run the method, then call [`IdempotencyCache::complete`].
    Run(W),
    /// Already finished: answer the waiter with this result.
    Done(MethodResult, W),
    /// Still running: the waiter was queued and gets the result on completion.
    Queued,
}

enum Entry<W> {
    Running(Vec<W>),
    Done { result: MethodResult, at: Instant },
}

/// Keyed by `(method, idempotencyKey)`. `W` is whatever a waiter needs to be answered.
pub struct IdempotencyCache<W> {
    entries: HashMap<(String, String), Entry<W>>,
    order: VecDeque<(String, String)>,
    ttl: Duration,
    capacity: usize,
}

impl<W> Default for IdempotencyCache<W> {
    fn default() -> Self {
        Self::new(TTL, CAPACITY)
    }
}

impl<W> IdempotencyCache<W> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            capacity,
        }
    }

    pub fn begin(&mut self, method: &str, key: &str, waiter: W, now: Instant) -> Begin<W> {
        self.expire(now);
        let k = (method.to_owned(), key.to_owned());
        match self.entries.get_mut(&k) {
            Some(Entry::Done { result, .. }) => Begin::Done(result.clone(), waiter),
            Some(Entry::Running(waiters)) => {
                waiters.push(waiter);
                Begin::Queued
            }
            None => {
                while self.order.len() >= self.capacity {
                    if let Some(old) = self.order.pop_front() {
                        self.entries.remove(&old);
                    }
                }
                self.order.push_back(k.clone());
                self.entries.insert(k, Entry::Running(Vec::new()));
                Begin::Run(waiter)
            }
        }
    }

    /// Records the result and returns the waiters that queued behind the first call.
    pub fn complete(
        &mut self,
        method: &str,
        key: &str,
        result: MethodResult,
        now: Instant,
    ) -> Vec<W> {
        let k = (method.to_owned(), key.to_owned());
        match self.entries.insert(k, Entry::Done { result, at: now }) {
            Some(Entry::Running(waiters)) => waiters,
            _ => Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            match self.entries.get(front) {
                Some(Entry::Done { at, .. }) if now.duration_since(*at) >= self.ttl => {
                    let k = self.order.pop_front().expect("front exists");
                    self.entries.remove(&k);
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test(start_paused = true)]
    async fn a_retry_gets_the_first_result_until_the_ttl_passes() {
        let mut c: IdempotencyCache<u32> = IdempotencyCache::default();
        let t0 = Instant::now();
        assert_eq!(c.begin("config.patch", "k1", 1, t0), Begin::Run(1));
        assert_eq!(c.begin("config.patch", "k1", 2, t0), Begin::Queued);
        assert_eq!(
            c.complete("config.patch", "k1", Ok(json!({"n": 1})), t0),
            vec![2]
        );
        let just_before = t0 + TTL - Duration::from_millis(1);
        assert_eq!(
            c.begin("config.patch", "k1", 3, just_before),
            Begin::Done(Ok(json!({"n": 1})), 3)
        );
        assert_eq!(
            c.begin("config.patch", "k1", 4, t0 + TTL),
            Begin::Run(4),
            "expired at the TTL"
        );
        assert_eq!(
            c.begin("config.apply", "k1", 5, t0 + TTL),
            Begin::Run(5),
            "keys are per method"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn capacity_evicts_the_oldest_key() {
        let mut c: IdempotencyCache<()> = IdempotencyCache::new(TTL, 2);
        let now = Instant::now();
        for k in ["a", "b", "c"] {
            assert_eq!(c.begin("m", k, (), now), Begin::Run(()));
            c.complete("m", k, Ok(json!(k)), now);
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.begin("m", "c", (), now), Begin::Done(Ok(json!("c")), ()));
        assert_eq!(c.begin("m", "a", (), now), Begin::Run(()), "a was evicted");
    }
}
