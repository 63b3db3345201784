//! The arena pool: one small stack of idle arenas per shard, shards picked
//! by thread.
//!
//! # Why shards by thread
//! A lease and a release must not take a global lock, and under load they
//! should not even share a cache line. Each thread is given a shard index
//! the first time it leases or releases (round-robin over the threads that
//! show up, modulo the shard count), so the tokio workers of a runtime with
//! as many workers as there are shards each get their own shard. tokio's own
//! `worker_index()` would fit better but needs `--cfg tokio_unstable`.
//!
//! A shard is a stack of idle leases behind a mutex that is only ever held
//! for a push or a pop (never across user code or an `.await`), so with one
//! thread per shard it is uncontended; the stack grows as arenas come back
//! and holds no slots in advance. A lease pops from the current thread's
//! shard (the most recently used arena first: its memory is warm in the
//! cache) and, when that is empty, steals from the others before it builds
//! a new arena: a request often ends on another worker than the one it
//! started on, so arenas drift between shards. A release pushes to the
//! current thread's shard and drops the arena when the shard is full.
//!
//! Counters are per shard and summed by [`PoolStats`]: a lease counts on the
//! leasing thread's shard and a release on the releasing thread's, so one
//! shard's `in_flight` can be negative while the sum is right.

use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::handle::RequestArena;
use crate::lease::Lease;

mod config;

pub(crate) use config::Config;

/// A pooled lease (its arena reset) and the arena's capacity when it was
/// pooled. Pooling the `Arc` and not just the arena is what makes a lease
/// allocation-free in steady state.
struct Idle {
    lease: Arc<Lease>,
    capacity: usize,
}

/// One shard: the stack and its counters, on their own cache lines.
#[repr(align(128))]
struct Shard {
    idle: Mutex<Vec<Idle>>,
    hits: AtomicU64,
    misses: AtomicU64,
    in_flight: AtomicIsize,
    retained_bytes: AtomicUsize,
}

impl Shard {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // Nothing panics while the lock is held; a poisoned stack is whole.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self) -> Option<Idle> {
        let idle = self.idle().pop()?;
        self.retained_bytes
            .fetch_sub(idle.capacity, Ordering::Relaxed);
        Some(idle)
    }
}

pub(crate) struct Pool {
    pub(crate) config: Config,
    shards: Box<[Shard]>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

thread_local! {
    /// This thread's shard index, before the modulo (`usize::MAX`: not yet
    /// assigned).
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

#[inline]
fn thread_slot() -> usize {
    THREAD_SLOT
        .try_with(|slot| {
            let v = slot.get();
            if v != usize::MAX {
                return v;
            }
            let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
            slot.set(v);
            v
        })
        // During thread teardown the thread-local may be gone.
        .unwrap_or(0)
}

impl Pool {
    /// Builds the pool from settings checked by [`Config::validate`].
    pub(crate) fn new(config: Config) -> Pool {
        debug_assert!(config.validate().is_ok());
        let shards = (0..config.shards)
            .map(|_| Shard {
                idle: Mutex::new(Vec::new()),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                in_flight: AtomicIsize::new(0),
                retained_bytes: AtomicUsize::new(0),
            })
            .collect();
        Pool { config, shards }
    }

    #[inline]
    fn local(&self) -> (usize, &Shard) {
        let i = thread_slot() % self.shards.len();
        (i, &self.shards[i])
    }

    /// Leases an arena for one request.
    pub(crate) fn lease(self: &Arc<Self>, span: tracing::Span) -> RequestArena {
        let (mut lease, hit) = self.take();
        Arc::get_mut(&mut lease)
            .expect("a pooled lease has no other owner")
            .start(Arc::clone(self), span, hit);
        RequestArena::new(lease)
    }

    /// A pooled lease, or a new one; and whether it was pooled.
    fn take(&self) -> (Arc<Lease>, bool) {
        let (home, shard) = self.local();
        shard.in_flight.fetch_add(1, Ordering::Relaxed);
        let found = shard.pop().or_else(|| {
            // Steal: the arenas of requests that ended on other threads.
            let n = self.shards.len();
            (1..n).find_map(|k| self.shards[(home + k) % n].pop())
        });
        match found {
            Some(idle) => {
                shard.hits.fetch_add(1, Ordering::Relaxed);
                (idle.lease, true)
            }
            None => {
                shard.misses.fetch_add(1, Ordering::Relaxed);
                // Settings checked when the layer was configured.
                let arena = self.config.builder().build_sync();
                (Arc::new(Lease::new(arena)), false)
            }
        }
    }

    /// Resets the arena of `lease` (destructors run) and pools the lease,
    /// or drops it. Called by the release of the last handle.
    pub(crate) fn recycle(&self, lease: Arc<Lease>, capacity: usize) {
        let (_, shard) = self.local();
        // Counted when this returns, even if a destructor run by `reset`
        // panics, so `in_flight` always comes back to zero.
        struct Done<'a>(&'a AtomicIsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Release);
            }
        }
        let _done = Done(&shard.in_flight);
        // A destructor of a value in the arena that panics here would
        // surface wherever the last handle happened to be dropped (inside
        // hyper's body polling, say), out of reach of the user's
        // `CatchPanicLayer`: report it and drop the arena instead.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.reset_and_pool(shard, lease, capacity)
        }));
        if outcome.is_err() {
            crate::lease::quietly(|| {
                tracing::error!(
                    target: "arena_tower",
                    "a destructor of a value in a request arena panicked during its release; \
                     the arena was dropped instead of pooled"
                )
            });
        }
    }

    fn reset_and_pool(&self, shard: &Shard, mut lease: Arc<Lease>, capacity: usize) {
        let config = &self.config;
        if config.retained_per_shard == 0 || shard.idle().len() >= config.retained_per_shard {
            return; // dropped: frees everything, destructors run
        }
        let Some(arena) = Arc::get_mut(&mut lease).map(Lease::finish) else {
            return; // cannot happen: the release owns the lease alone
        };
        // An arena that grew past the retention size, or that holds parts
        // for more threads than the pool's workers (a handler that touched
        // it from short-lived threads), forgets them all.
        let capacity = if capacity > config.max_retained_arena_bytes
            || arena.threads() > config.max_threads()
        {
            arena.reset_and_shrink();
            arena.capacity()
        } else {
            arena.reset();
            capacity
        };
        // The next request's `peak_bytes` is its own.
        arena.reset_peak();
        // Counted before the push, so a concurrent pop never subtracts first.
        shard.retained_bytes.fetch_add(capacity, Ordering::Relaxed);
        let mut idle = shard.idle();
        if idle.len() < config.retained_per_shard {
            idle.push(Idle { lease, capacity });
        } else {
            drop(idle);
            shard.retained_bytes.fetch_sub(capacity, Ordering::Relaxed);
            // `lease` drops here, outside the lock.
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            leases: 0,
            hits: 0,
            misses: 0,
            in_flight: 0,
            retained_arenas: 0,
            retained_bytes: 0,
            retained_bytes_cap: self
                .shards
                .len()
                .saturating_mul(self.config.retained_per_shard)
                .saturating_mul(self.config.max_retained_arena_bytes),
            shards: self.shards.len(),
        };
        let mut in_flight: isize = 0;
        for shard in self.shards.iter() {
            let hits = shard.hits.load(Ordering::Relaxed);
            let misses = shard.misses.load(Ordering::Relaxed);
            stats.hits += hits;
            stats.misses += misses;
            stats.leases += hits + misses;
            in_flight = in_flight.wrapping_add(shard.in_flight.load(Ordering::Acquire));
            stats.retained_arenas += shard.idle().len();
            stats.retained_bytes += shard.retained_bytes.load(Ordering::Relaxed);
        }
        stats.in_flight = usize::try_from(in_flight).unwrap_or(0);
        stats
    }
}

/// Counters of an [`ArenaLayer`](crate::ArenaLayer)'s pool, from
/// [`ArenaLayer::pool_stats`](crate::ArenaLayer::pool_stats).
///
/// The counters are summed over the shards without a lock, so while
/// requests run they are a snapshot of each shard, not of all at one
/// instant.
///
/// ```
/// use arena_tower::ArenaLayer;
///
/// let layer = ArenaLayer::new();
/// let stats = layer.pool_stats();
/// assert_eq!(stats.leases, 0);
/// assert_eq!(stats.in_flight, 0);
/// assert!(stats.retained_bytes <= stats.retained_bytes_cap);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Arenas leased so far (`hits + misses`).
    pub leases: u64,
    /// Leases served by a pooled arena.
    pub hits: u64,
    /// Leases that had to build a new arena.
    pub misses: u64,
    /// Arenas leased and not yet released: their response has not ended, or
    /// a `RequestArena` handle (or an `alloc_bytes` buffer) is still alive.
    pub in_flight: usize,
    /// Arenas in the pool.
    pub retained_arenas: usize,
    /// Bytes of chunks owned by the arenas in the pool.
    pub retained_bytes: usize,
    /// The most `retained_bytes` can be: shards × `retained_per_shard` ×
    /// `max_retained_arena_bytes`.
    pub retained_bytes_cap: usize,
    /// Number of shards.
    pub shards: usize,
}
