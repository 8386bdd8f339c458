//! The verified-token cache: a hit skips the signature and both store
//! reads, which is what makes verification cheap enough for every request.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use stormproof_types::UnixTime;

use crate::principal::Principal;

/// Independent locks, so concurrent readers on different cores do not all
/// bounce one lock word between them.
const SHARDS: usize = 16;

/// Bytes of a long key that are hashed. A token ends in its signature,
/// which is unique per token; hashing only the tail keeps a hit well under
/// a microsecond for 1 KiB tokens. Equality still compares whole tokens.
const TAIL: usize = 64;

/// What a hit needs to re-check without the store.
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub(crate) principal: Principal,
    pub(crate) kid: Arc<str>,
    /// The signing key's `not_after`: a cached token must stop verifying
    /// when its key dies, exactly as an uncached one would.
    pub(crate) key_not_after: UnixTime,
}

type Shard = RwLock<HashMap<String, CachedToken, TailHash>>;

#[derive(Debug)]
pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    hasher: TailHash,
    per_shard: usize,
    /// Bumped before every clear. A verification records it before reading
    /// the store and inserts only if it is unchanged, so a result computed
    /// from pre-revocation state cannot land in the cache after the clear.
    generation: AtomicU64,
}

impl TokenCache {
    /// A cache of about `capacity` tokens; 0 disables caching.
    pub(crate) fn new(capacity: usize) -> Self {
        let hasher = TailHash::default();
        let shards = (0..SHARDS)
            .map(|_| RwLock::new(HashMap::with_hasher(hasher.clone())))
            .collect();
        Self {
            shards,
            hasher,
            per_shard: capacity.div_ceil(SHARDS),
            generation: AtomicU64::new(0),
        }
    }

    fn shard(&self, token: &str) -> &Shard {
        // Bits 32.. are used by neither the bucket index (low bits) nor the
        // control tag (top 7 bits) of the shard's own table.
        let hash = self.hasher.hash_one(token);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }

    pub(crate) fn get(&self, token: &str) -> Option<CachedToken> {
        read(self.shard(token)).get(token).cloned()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Inserts unless the cache was cleared since `generation` was read.
    pub(crate) fn insert(&self, token: &str, entry: CachedToken, generation: u64) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = write(self.shard(token));
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(token) {
            // Evict-all keeps the hit path free of bookkeeping; a miss only
            // costs one full verification.
            shard.clear();
        }
        shard.insert(token.to_owned(), entry);
    }

    pub(crate) fn remove(&self, token: &str) {
        write(self.shard(token)).remove(token);
    }

    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            write(shard).clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards.iter().map(|s| read(s).len()).sum()
    }
}

// A panic while holding a shard cannot leave a HashMap half-updated in a
// way that matters here: at worst an entry is missing.
fn read(shard: &Shard) -> RwLockReadGuard<'_, HashMap<String, CachedToken, TailHash>> {
    shard
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write(shard: &Shard) -> RwLockWriteGuard<'_, HashMap<String, CachedToken, TailHash>> {
    shard
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SipHash with a random key (so no one can aim collisions), over the
/// length and the last [`TAIL`] bytes of each write.
#[derive(Debug, Clone, Default)]
struct TailHash(RandomState);

impl BuildHasher for TailHash {
    type Hasher = TailHasher;
    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    fn write(&mut self, bytes: &[u8]) {
        if bytes.len() > TAIL {
            self.0.write_usize(bytes.len());
            self.0.write(&bytes[bytes.len() - TAIL..]);
        } else {
            self.0.write(bytes);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use stormproof_types::TenantName;

    use super::*;

    fn entry() -> CachedToken {
        let tenant = TenantName::parse("acme").unwrap();
        let principal = Principal::new(
            tenant,
            "u".into(),
            "c".into(),
            "s".into(),
            "j".into(),
            String::new(),
            2,
            1,
            None,
        );
        CachedToken {
            principal,
            kid: "k".into(),
            key_not_after: 3,
        }
    }

    #[test]
    fn tokens_sharing_a_tail_are_distinct() {
        let cache = TokenCache::new(100);
        let tail = "x".repeat(100);
        let (a, b) = (format!("a{tail}"), format!("b{tail}"));
        cache.insert(&a, entry(), cache.generation());
        assert!(cache.get(&a).is_some());
        assert!(cache.get(&b).is_none());
    }

    #[test]
    fn stale_generation_is_not_inserted() {
        let cache = TokenCache::new(100);
        let generation = cache.generation();
        cache.clear();
        cache.insert("t", entry(), generation);
        assert!(cache.get("t").is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = TokenCache::new(32);
        for i in 0..1000 {
            cache.insert(&format!("token-{i}"), entry(), cache.generation());
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let disabled = TokenCache::new(0);
        disabled.insert("t", entry(), disabled.generation());
        assert!(disabled.get("t").is_none());
    }
}
