//! The thread cache: the idle arenas a thread keeps for its next leases,
//! so that a lease and a release on the same thread take no lock and no
//! atomic read-modify-write (see the [pool docs](super)).
//!
//! A cache has a slot for each of the last few pools this thread leased
//! from ([`POOLS_PER_THREAD`]): a server with a few `ArenaLayer`s (one per
//! router, say) whose requests interleave on one worker keeps a cache for
//! each. A lease from yet another pool takes the least recently used slot
//! over, sending its arenas to their pool's shards. A slot's arenas are
//! covered by a credit from its pool's budget, given back when the slot
//! empties, is taken over, or its thread exits.

use std::cell::RefCell;
use std::sync::Arc;

use super::{add_own, Counters, Idle, Pool};
use crate::lease_ref::LeaseBox;

/// Pools a thread's cache serves at once.
pub(crate) const POOLS_PER_THREAD: usize = 4;

struct Bound {
    pool: Arc<Pool>,
    counters: Arc<Counters>,
}

/// One thread's cache: a slot per pool, the most recently used first.
struct ThreadCache {
    slots: [Slot; POOLS_PER_THREAD],
}

/// The part of a thread's cache that serves one pool.
struct Slot {
    bound: Option<Bound>,
    /// Idle arenas of `bound.pool`, the most recently released last.
    idle: Vec<Idle>,
    /// Bytes of `idle`.
    cached: usize,
    /// Bytes granted by the pool's budget; at least `cached`.
    credit: usize,
}

impl Slot {
    const EMPTY: Slot = Slot {
        bound: None,
        idle: Vec::new(),
        cached: 0,
        credit: 0,
    };
}

thread_local! {
    static CACHE: RefCell<ThreadCache> = const {
        RefCell::new(ThreadCache { slots: [Slot::EMPTY; POOLS_PER_THREAD] })
    };
}

/// A lease from this thread's cache (or, through it, from the shards or a
/// new arena), counted as this thread's; `None` when the cache cannot be
/// used (thread teardown, or a lease further up this thread's stack).
#[inline]
pub(super) fn lease(pool: &Arc<Pool>) -> Option<(LeaseBox, bool)> {
    CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            Some(cache.lease(pool))
        })
        .ok()
        .flatten()
}

/// Pools `idle` (reset, its pool reference taken out: `pool`) in this
/// thread's cache if it serves `pool` and has room and credit; otherwise
/// both come back.
#[inline]
pub(super) fn put(pool: Arc<Pool>, idle: Idle) -> Result<(), (Arc<Pool>, Idle)> {
    let mut slot = Some((pool, idle));
    let _ = CACHE.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if let Some((pool, idle)) = slot.take() {
                slot = match cache.serving(&pool) {
                    Some(at) => at.put(pool, idle).err(),
                    None => Some((pool, idle)),
                };
            }
        }
    });
    match slot {
        None => Ok(()),
        Some(back) => Err(back),
    }
}

/// Empties this thread's slot for `pool` (which has closed), if any.
#[cold]
pub(super) fn forget(pool: &Arc<Pool>) {
    let _ = CACHE.try_with(|cache| {
        if let Ok(mut cache) = cache.try_borrow_mut() {
            if let Some(slot) = cache.serving(pool) {
                slot.unbind();
            }
        }
    });
}

impl ThreadCache {
    /// The slot that serves `pool`, if any.
    #[inline]
    fn serving(&mut self, pool: &Arc<Pool>) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|slot| slot.serves(pool))
    }

    #[inline]
    fn lease(&mut self, pool: &Arc<Pool>) -> (LeaseBox, bool) {
        if !self.slots[0].serves(pool) {
            self.bring_to_front(pool);
        }
        self.slots[0].lease(pool)
    }

    /// Makes the first slot serve `pool`, keeping the slots in the order
    /// they were last used in: `pool`'s slot if it has one, else an unused
    /// one, else the least recently used one (the last), whose arenas go to
    /// their pool's shards. Slots of pools that have closed let their
    /// arenas go first (so they go whenever the thread switches pools).
    #[cold]
    fn bring_to_front(&mut self, pool: &Arc<Pool>) {
        for slot in &mut self.slots {
            if slot.bound.as_ref().is_some_and(|b| b.pool.is_closed()) {
                slot.unbind();
            }
        }
        let at = match self.slots.iter().position(|slot| slot.serves(pool)) {
            Some(at) => at,
            None => {
                let at = self
                    .slots
                    .iter()
                    .position(|slot| slot.bound.is_none())
                    .unwrap_or(POOLS_PER_THREAD - 1);
                self.slots[at].bind(pool);
                at
            }
        };
        self.slots[..=at].rotate_right(1);
    }
}

impl Slot {
    fn serves(&self, pool: &Arc<Pool>) -> bool {
        self.bound
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(&b.pool, pool))
    }

    /// A lease from this slot, which serves `pool`. (A pool leases only
    /// while a layer or service owns it: never closed here.)
    #[inline]
    fn lease(&mut self, pool: &Arc<Pool>) -> (LeaseBox, bool) {
        let Slot {
            bound: Some(bound),
            idle,
            cached,
            credit,
        } = self
        else {
            unreachable!("arena-tower: a slot leases only once bound")
        };
        let found = match idle.pop() {
            Some(idle) => {
                *cached -= idle.capacity;
                Some(idle)
            }
            None => bound.pool.pop_shards().inspect(|idle| {
                // Its grant becomes this cache's credit, for its release.
                *credit += idle.capacity;
            }),
        };
        let out = match found {
            Some(idle) => {
                add_own(&bound.counters.hits, 1);
                (idle.lease, true)
            }
            None => {
                add_own(&bound.counters.misses, 1);
                (pool.new_lease(), false)
            }
        };
        self.trim();
        self.publish();
        out
    }

    /// Pools `idle` of `pool` here (a slot that serves `pool`, found by
    /// `ThreadCache::serving`), or gives both back.
    #[inline]
    fn put(&mut self, pool: Arc<Pool>, mut idle: Idle) -> Result<(), (Arc<Pool>, Idle)> {
        let Some(bound) = &self.bound else {
            return Err((pool, idle));
        };
        debug_assert!(Arc::ptr_eq(&bound.pool, &pool), "a slot of another pool");
        if self.idle.len() >= pool.local_arenas || pool.is_closed() {
            return Err((pool, idle));
        }
        let needed = self.cached + idle.capacity;
        if needed > self.credit {
            if !pool.grant(needed - self.credit) {
                return Err((pool, idle));
            }
            self.credit = needed;
        }
        add_own(&bound.counters.releases, 1);
        // The lease gets its pool reference back (moved, not cloned).
        idle.lease.get_mut().set_pool(pool);
        self.cached = needed;
        self.idle.push(idle);
        self.publish();
        Ok(())
    }

    /// Keeps at most `slack` bytes of credit beyond the cached arenas.
    #[inline]
    fn trim(&mut self) {
        if let Some(bound) = &self.bound {
            let keep = self.cached + bound.pool.slack;
            if self.credit > keep {
                bound.pool.give_back(self.credit - keep);
                self.credit = keep;
            }
        }
    }

    /// Makes the cache's gauges visible to `PoolStats`.
    #[inline]
    fn publish(&self) {
        if let Some(bound) = &self.bound {
            use std::sync::atomic::Ordering::Relaxed;
            bound.counters.idle_arenas.store(self.idle.len(), Relaxed);
            bound.counters.idle_bytes.store(self.cached, Relaxed);
        }
    }

    /// Serves `pool` from now on.
    #[cold]
    fn bind(&mut self, pool: &Arc<Pool>) {
        self.unbind();
        let counters = Arc::new(Counters::default());
        pool.register(Arc::clone(&counters));
        self.bound = Some(Bound {
            pool: Arc::clone(pool),
            counters,
        });
    }

    /// Sends the cached arenas to their pool's shards (with the credit that
    /// covers them), gives the rest of the credit back and retires the
    /// counters.
    #[cold]
    fn unbind(&mut self) {
        let Some(Bound { pool, counters }) = self.bound.take() else {
            return;
        };
        // The gauges first: `PoolStats` would otherwise count the arenas
        // here and in the shards at once, over the cap.
        counters
            .idle_arenas
            .store(0, std::sync::atomic::Ordering::Relaxed);
        counters
            .idle_bytes
            .store(0, std::sync::atomic::Ordering::Relaxed);
        // (The vector's capacity stays, for the slot's next pool.)
        let mut idle = std::mem::take(&mut self.idle);
        for arena in idle.drain(..) {
            // Its share of the credit goes with it.
            self.credit -= arena.capacity;
            self.cached -= arena.capacity;
            pool.push_shard(arena, true);
        }
        self.idle = idle;
        pool.give_back(self.credit);
        self.credit = 0;
        pool.retire(&counters);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.unbind();
    }
}
