//! The arena pool: a small cache of idle arenas per thread, shards of idle
//! arenas shared between threads behind it, and one byte budget for all.
//!
//! # Why a cache per thread
//! A request leases an arena and releases it, usually on the same tokio
//! worker thread, thousands of times a second per worker. Anything shared
//! on that path costs: a mutex is two atomic read-modify-writes, an
//! `Arc` clone of the pool one more on a cache line every worker touches.
//! So a lease first pops the current thread's cache (at most
//! [`LOCAL_ARENAS`], most recently used first: its memory is warm in the
//! CPU's cache) and a release pushes to it: no lock, no atomic
//! read-modify-write, no allocation. Its counters are the thread's own
//! (written by it alone, summed by [`PoolStats`]). A thread keeps such a
//! cache for each of the last few pools it served
//! ([`local::POOLS_PER_THREAD`]), so that requests of a few layers (one
//! per router) interleaving on one worker each find theirs.
//!
//! # Why shards behind it
//! A task moves between workers, so a request may end on another thread
//! than the one it started on: arenas drift. A release that finds its
//! thread's cache full (or serving other pools) pushes to the
//! thread's shard, a stack behind a mutex held only for a push or a pop;
//! a lease that finds its cache empty pops its shard, then steals from the
//! others, before it builds a new arena. Threads are given shards
//! round-robin, so one worker per shard never contends.
//!
//! # One budget
//! The idle arenas of the whole pool (thread caches and shards) own at most
//! [`Config::max_retained_bytes`] of chunks, whatever the core count. Every
//! idle byte is covered by a grant from the pool's budget: a shard takes
//! one per arena pushed and gives it back at the pop; a thread cache holds
//! a *credit* that covers its arenas plus a little slack (at most
//! [`Pool::slack`], one arena in steady state), so that a lease and a
//! release on the same thread touch the budget not at all. An arena that
//! finds no budget, or that grew past `max_retained_arena_bytes`, is
//! shrunk or dropped instead of pooled.
//!
//! # Lifetime
//! A pooled lease keeps its pool alive (it holds the `Arc` it gives back to
//! the release, so the release clones nothing); the cycle is broken by
//! [`Pool::close`] when the last layer and service are dropped
//! ([`PoolOwner`]): the shards are emptied at once, and each thread's cache
//! of it when that thread next releases an arena of it, switches from one
//! pool to another, or exits.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::handle::RequestArena;
use crate::lease::Lease;
use crate::lease_ref::LeaseBox;

mod config;
mod local;

pub(crate) use config::Config;

/// Most idle arenas a thread's cache holds.
pub(crate) const LOCAL_ARENAS: usize = 4;

/// An idle lease (its arena reset) and the arena's capacity when it was
/// pooled. Pooling the `Arc` and not just the arena is what makes a lease
/// allocation-free in steady state.
pub(crate) struct Idle {
    pub(crate) lease: LeaseBox,
    pub(crate) capacity: usize,
}

/// Counters of a thread cache (written by its thread alone, with plain
/// loads and stores) or of the pool's shared paths (read-modify-writes).
#[derive(Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    releases: AtomicU64,
    /// Gauges of a thread cache: its idle arenas and their bytes.
    idle_arenas: AtomicUsize,
    idle_bytes: AtomicUsize,
}

/// Adds `n` to a counter only this thread writes: no read-modify-write.
#[inline(always)]
pub(crate) fn add_own(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

/// One shard: a stack of idle arenas, on its own cache lines.
#[repr(align(128))]
struct Shard {
    idle: Mutex<ShardIdle>,
}

#[derive(Default)]
struct ShardIdle {
    arenas: Vec<Idle>,
    /// Bytes of `arenas`, each covered by a grant from the budget.
    bytes: usize,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardIdle> {
        // Nothing panics while the lock is held; a poisoned stack is whole.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct Pool {
    pub(crate) config: Config,
    /// Bytes of `config.max_retained_bytes` not granted to a shard's
    /// arenas or a thread cache's credit.
    budget: AtomicUsize,
    /// The most credit a thread cache keeps beyond its arenas.
    slack: usize,
    /// The most arenas a thread cache holds.
    local_arenas: usize,
    /// An arena that owns more bytes of chunks, or parts for more threads,
    /// is shrunk before it is pooled (from `config`, computed once).
    max_arena_bytes: usize,
    max_arena_threads: usize,
    shards: Box<[Shard]>,
    /// Counts of the shared paths, and of thread caches that went away.
    shared: Counters,
    /// The counters of the thread caches that serve this pool.
    threads: Mutex<Vec<Arc<Counters>>>,
    /// Set when the last layer and service are gone.
    closed: AtomicBool,
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
                idle: Mutex::default(),
            })
            .collect();
        let local_arenas = LOCAL_ARENAS.min(config.retained_per_shard);
        let slack = (local_arenas.saturating_mul(config.max_retained_arena_bytes))
            .min(config.max_retained_bytes / (2 * config.shards));
        Pool {
            budget: AtomicUsize::new(config.max_retained_bytes),
            slack,
            local_arenas,
            // Half the request limit at most: see `max_retained_arena_bytes`.
            max_arena_bytes: config
                .max_retained_arena_bytes
                .min(config.max_retained_bytes)
                .min(
                    config
                        .max_request_bytes
                        .map_or(usize::MAX, |limit| limit / 2),
                ),
            max_arena_threads: config.max_threads(),
            shards,
            shared: Counters::default(),
            threads: Mutex::default(),
            closed: AtomicBool::new(false),
            config,
        }
    }

    /// Leases an arena for one request.
    #[inline]
    pub(crate) fn lease(self: &Arc<Self>, span: Option<tracing::Span>) -> RequestArena {
        let (mut lease, hit) = match local::lease(self) {
            Some(found) => found,
            None => self.lease_shared(),
        };
        lease.get_mut().start(span, hit);
        RequestArena::new(lease.share())
    }

    /// A lease without the thread cache (its thread-local is gone, or in
    /// use further up the stack).
    #[cold]
    fn lease_shared(self: &Arc<Self>) -> (LeaseBox, bool) {
        match self.pop_shards() {
            Some(idle) => {
                self.give_back(idle.capacity);
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                (idle.lease, true)
            }
            None => {
                self.shared.misses.fetch_add(1, Ordering::Relaxed);
                (self.new_lease(), false)
            }
        }
    }

    /// A lease of a new arena (a pool miss).
    fn new_lease(self: &Arc<Self>) -> LeaseBox {
        // Settings checked when the layer was configured.
        let arena = self.config.builder().build_sync();
        LeaseBox::new(Lease::new(arena, Arc::clone(self)))
    }

    /// Takes `bytes` of the budget, if that much is left.
    fn grant(&self, bytes: usize) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    /// Returns `bytes` to the budget.
    fn give_back(&self, bytes: usize) {
        if bytes > 0 {
            self.budget.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Pops the current thread's shard, then steals from the others. The
    /// arena's grant is the caller's.
    fn pop_shards(&self) -> Option<Idle> {
        let n = self.shards.len();
        let home = thread_slot() % n;
        (0..n).find_map(|k| {
            let mut shard = self.shards[(home + k) % n].lock();
            let idle = shard.arenas.pop()?;
            shard.bytes -= idle.capacity;
            Some(idle)
        })
    }

    /// Pushes `idle` to the current thread's shard, its bytes covered by a
    /// grant the caller already holds (`granted`) or takes here; without
    /// budget or room, the arena is dropped (after the lock is let go).
    fn push_shard(&self, idle: Idle, granted: bool) {
        if self.closed.load(Ordering::Acquire) {
            if granted {
                self.give_back(idle.capacity);
            }
            return;
        }
        if !granted && !self.grant(idle.capacity) {
            return;
        }
        let capacity = idle.capacity;
        let mut shard = self.shards[thread_slot() % self.shards.len()].lock();
        let refused = if shard.arenas.len() < self.config.retained_per_shard {
            shard.bytes += capacity;
            shard.arenas.push(idle);
            None
        } else {
            Some(idle)
        };
        drop(shard);
        if refused.is_some() {
            self.give_back(capacity);
        }
    }

    /// Resets the arena of `lease` (destructors run) and pools the lease,
    /// or drops it. Called by the release of the last handle, with the
    /// lease's own reference to its pool (`pool`), which goes back into
    /// the lease when it is pooled.
    // (Inlined into its one caller, `Lease::released`: one call frame less
    // per release.)
    #[inline(always)]
    pub(crate) fn recycle(pool: Arc<Pool>, lease: LeaseBox) {
        // A destructor of a value in the arena that panics here would
        // surface wherever the last handle happened to be dropped (inside
        // hyper's body polling, say), out of reach of the user's
        // `CatchPanicLayer`: report it and drop the arena instead.
        let reset = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.reset(lease)));
        match reset {
            Ok(Some(idle)) => {
                if let Err((pool, mut idle)) = local::put(pool, idle) {
                    pool.shared.releases.fetch_add(1, Ordering::Relaxed);
                    idle.lease.get_mut().set_pool(Arc::clone(&pool));
                    pool.push_shard(idle, false);
                }
            }
            Ok(None) => {
                pool.shared.releases.fetch_add(1, Ordering::Relaxed);
                if pool.is_closed() {
                    // Its layers are gone: this thread's cache lets the
                    // pool's arenas go now, not at the thread's exit.
                    local::forget(&pool);
                }
            }
            Err(_) => {
                pool.shared.releases.fetch_add(1, Ordering::Relaxed);
                crate::lease::quietly(|| {
                    tracing::error!(
                        target: "arena_tower",
                        "a destructor of a value in a request arena panicked during its \
                         release; the arena was dropped instead of pooled"
                    )
                });
            }
        }
    }

    /// The arena of `lease`, reset for the next request and shrunk if it
    /// grew too big; `None` (and the lease dropped) if it is not pooled.
    #[inline(always)]
    fn reset(&self, mut lease: LeaseBox) -> Option<Idle> {
        let config = &self.config;
        if config.retained_per_shard == 0 || self.closed.load(Ordering::Acquire) {
            return None; // dropped: frees everything, destructors run
        }
        let arena = lease.get_mut().finish();
        // An arena that grew past the retention size, or that holds parts
        // for more threads than the pool's workers (a handler that touched
        // it from short-lived threads), forgets them all; the next request's
        // `peak_bytes` is its own.
        let capacity = arena.reset_for_reuse(self.max_arena_bytes, self.max_arena_threads);
        Some(Idle { lease, capacity })
    }

    /// The last layer and service of this pool are gone: empty the shards
    /// now; thread caches empty themselves when they see the flag.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for shard in self.shards.iter() {
            let idle = std::mem::take(&mut *shard.lock());
            self.give_back(idle.bytes);
            drop(idle);
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Registers a thread cache's counters.
    fn register(&self, counters: Arc<Counters>) {
        self.threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(counters);
    }

    /// Folds a thread cache's counters into the shared ones and forgets
    /// them (the cache is empty: its gauges are zero).
    fn retire(&self, counters: &Arc<Counters>) {
        let mut threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
        threads.retain(|c| !Arc::ptr_eq(c, counters));
        for (to, from) in [
            (&self.shared.hits, &counters.hits),
            (&self.shared.misses, &counters.misses),
            (&self.shared.releases, &counters.releases),
        ] {
            to.fetch_add(from.load(Ordering::Relaxed), Ordering::Relaxed);
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
            retained_bytes_cap: self.config.max_retained_bytes,
            shards: self.shards.len(),
        };
        let mut releases = 0;
        {
            let threads = self.threads.lock().unwrap_or_else(PoisonError::into_inner);
            for c in threads.iter().map(|c| &**c).chain([&self.shared]) {
                stats.hits += c.hits.load(Ordering::Relaxed);
                stats.misses += c.misses.load(Ordering::Relaxed);
                releases += c.releases.load(Ordering::Relaxed);
                stats.retained_arenas += c.idle_arenas.load(Ordering::Relaxed);
                stats.retained_bytes += c.idle_bytes.load(Ordering::Relaxed);
            }
        }
        for shard in self.shards.iter() {
            let shard = shard.lock();
            stats.retained_arenas += shard.arenas.len();
            stats.retained_bytes += shard.bytes;
        }
        // An arena moving between a thread cache and a shard while the sums
        // run can be counted on both sides; the budget keeps the pool itself
        // within the cap, so the snapshot is too.
        stats.retained_bytes = stats.retained_bytes.min(stats.retained_bytes_cap);
        stats.leases = stats.hits + stats.misses;
        stats.in_flight = usize::try_from(stats.leases.saturating_sub(releases)).unwrap_or(0);
        stats
    }
}

/// The owners of a pool: the layer and every service it made. The last
/// one's drop closes the pool, so that pooled leases, which keep the pool
/// alive, let it go.
#[derive(Debug)]
pub(crate) struct PoolOwner(pub(crate) Arc<Pool>);

impl Drop for PoolOwner {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Counters of an [`ArenaLayer`](crate::ArenaLayer)'s pool, from
/// [`ArenaLayer::pool_stats`](crate::ArenaLayer::pool_stats).
///
/// The counters are summed over threads and shards without stopping them,
/// so while requests run they are a snapshot of each, not of all at one
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
    /// Arenas in the pool (thread caches and shards).
    pub retained_arenas: usize,
    /// Bytes of chunks owned by the arenas in the pool (a snapshot: an
    /// arena moving between a thread's cache and a shard meanwhile may be
    /// counted twice or not at all; never reported above the cap, which
    /// the pool never exceeds).
    pub retained_bytes: usize,
    /// The most `retained_bytes` can be:
    /// [`max_retained_bytes`](crate::ArenaLayer::max_retained_bytes).
    pub retained_bytes_cap: usize,
    /// Number of shards.
    pub shards: usize,
}
