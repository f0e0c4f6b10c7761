//! Failover state: auth-profile cool-downs (layer 1), kept in memory and in the store so
//! they survive a restart. Layers 2 (thinking downgrade) and 3 (model cascade) are steps
//! of the run loop (`run.rs`), driven by [`ProviderError`]'s classification.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tracing::warn;

use super::model::ProviderError;
use crate::store::Store;

/// Cool-down after the n-th consecutive failure of a profile: 1 m, 5 m, 25 m, then 1 h.
pub fn cooldown_for(failures: u32, err: &ProviderError) -> Duration {
    let base = match err {
        // Out of credit does not fix itself in minutes: 5 h, then 24 h.
        ProviderError::Billing { .. } => {
            return if failures <= 1 {
                Duration::from_secs(5 * 3600)
            } else {
                Duration::from_secs(24 * 3600)
            };
        }
        _ => match failures {
            0 | 1 => Duration::from_secs(60),
            2 => Duration::from_secs(5 * 60),
            3 => Duration::from_secs(25 * 60),
            _ => Duration::from_secs(3600),
        },
    };
    match err {
        ProviderError::RateLimited {
            retry_after: Some(r),
            ..
        } => base.max(*r),
        _ => base,
    }
}

/// Profile cool-downs of every provider: `"<provider>:<key index>"` -> (until ms, failures).
#[derive(Default)]
pub struct Cooldowns {
    store: Option<Store>,
    map: Mutex<HashMap<String, (u64, u32)>>,
}

impl Cooldowns {
    pub fn new(store: Option<Store>) -> Self {
        Self {
            store,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn profile_id(provider: &str, index: usize) -> String {
        format!("{provider}:{index}")
    }

    fn get(&self, profile: &str) -> Option<(u64, u32)> {
        if let Some(v) = self.map.lock().unwrap().get(profile) {
            return Some(*v);
        }
        let stored = self.store.as_ref()?.cooldown(profile).ok().flatten()?;
        self.map.lock().unwrap().insert(profile.to_owned(), stored);
        Some(stored)
    }

    /// `None` when the profile may be used now, else how long it still cools down.
    pub fn remaining(&self, profile: &str, now_ms: u64) -> Option<Duration> {
        let (until, _) = self.get(profile)?;
        (until > now_ms).then(|| Duration::from_millis(until - now_ms))
    }

    /// Records a failure that rotates profiles; returns the cool-down applied.
    pub fn failed(&self, profile: &str, err: &ProviderError, now_ms: u64) -> Duration {
        let failures = self.get(profile).map(|(_, n)| n).unwrap_or(0) + 1;
        let d = cooldown_for(failures, err);
        let v = (now_ms + d.as_millis() as u64, failures);
        self.map.lock().unwrap().insert(profile.to_owned(), v);
        if let Some(s) = &self.store
            && let Err(e) = s.set_cooldown(profile, Some(v))
        {
            warn!(profile, error = %e, "could not store the cool-down");
        }
        d
    }

    /// A success resets the profile's failure count.
    pub fn succeeded(&self, profile: &str) {
        let had = self.map.lock().unwrap().remove(profile).is_some();
        if let Some(s) = &self.store
            && (had || s.cooldown(profile).ok().flatten().is_some())
        {
            let _ = s.set_cooldown(profile, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited() -> ProviderError {
        ProviderError::RateLimited {
            retry_after: None,
            message: "slow down".into(),
        }
    }

    #[test]
    fn schedule_grows_then_caps_and_honours_retry_after() {
        let e = limited();
        let mins: Vec<u64> = (1..=6)
            .map(|n| cooldown_for(n, &e).as_secs() / 60)
            .collect();
        assert_eq!(mins, [1, 5, 25, 60, 60, 60]);
        let long = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(600)),
            message: String::new(),
        };
        assert_eq!(cooldown_for(1, &long), Duration::from_secs(600));
        let billing = ProviderError::Billing {
            message: String::new(),
        };
        assert!(cooldown_for(1, &billing) > Duration::from_secs(3600));
    }

    #[test]
    fn cooldowns_survive_a_restart_through_the_store() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.redb");
        {
            let c = Cooldowns::new(Some(Store::open(&path).unwrap()));
            assert_eq!(c.remaining("openai:0", 1_000), None);
            assert_eq!(
                c.failed("openai:0", &limited(), 1_000),
                Duration::from_secs(60)
            );
            assert_eq!(
                c.failed("openai:0", &limited(), 2_000),
                Duration::from_secs(300)
            );
        }
        let c = Cooldowns::new(Some(Store::open(&path).unwrap()));
        assert_eq!(
            c.remaining("openai:0", 2_000),
            Some(Duration::from_secs(300))
        );
        assert_eq!(c.remaining("openai:0", 2_000 + 300_000), None);
        assert_eq!(
            c.failed("openai:0", &limited(), 400_000),
            Duration::from_secs(25 * 60),
            "the third failure in a row"
        );
        c.succeeded("openai:0");
        assert_eq!(c.remaining("openai:0", 400_001), None);
        drop(c);
        let again = Cooldowns::new(Some(Store::open(&path).unwrap()));
        assert_eq!(again.remaining("openai:0", 400_001), None);
    }
}
