//! Feature `lockfree`: [`LockFreePool`], a bounded, thread-safe object pool,
//! and [`LockFreeStats`], its counters.
//!
//! # Why a pool next to an arena
//! An arena frees in bulk; some objects (parser states, scratch buffers,
//! graph nodes reused across traversals) are better recycled one by one.
//! The pool keeps up to `capacity` idle objects in a lock-free bounded queue
//! (`crossbeam_queue::ArrayQueue`, a well-kept implementation whose slots
//! carry sequence stamps, so an object is never handed out twice and there
//! is no ABA). [`LockFreePool::get`] pops one or makes a new one;
//! dropping the [`Pooled`] guard pushes it back, or drops it when the pool
//! is full. No `unsafe` code lives here.

#[allow(unused_imports)]
use crate::prelude::*;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering::Relaxed;

#[cfg(not(loom))]
use core::sync::atomic::AtomicU64;
#[cfg(not(loom))]
use crossbeam_queue::ArrayQueue;
#[cfg(loom)]
use loom::sync::atomic::AtomicU64;

/// Under `--cfg loom` the idle queue is a loom mutex around a `VecDeque`
/// with the same bounded push/pop contract as `ArrayQueue`, so that
/// `tests/loom_lockfree.rs` explores every interleaving of the pool's own
/// logic (guards, counters, the capacity bound). `ArrayQueue` itself is
/// crossbeam's, tested by crossbeam.
#[cfg(loom)]
struct ArrayQueue<T> {
    items: loom::sync::Mutex<std::collections::VecDeque<T>>,
    capacity: usize,
}

#[cfg(loom)]
impl<T> ArrayQueue<T> {
    fn new(capacity: usize) -> Self {
        ArrayQueue {
            items: loom::sync::Mutex::new(std::collections::VecDeque::new()),
            capacity,
        }
    }
    fn push(&self, value: T) -> Result<(), T> {
        let mut items = self.items.lock().unwrap();
        if items.len() == self.capacity {
            return Err(value);
        }
        items.push_back(value);
        Ok(())
    }
    fn pop(&self) -> Option<T> {
        self.items.lock().unwrap().pop_front()
    }
    fn len(&self) -> usize {
        self.items.lock().unwrap().len()
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A snapshot of a pool's counters (`Clone`, so snapshots can be kept and
/// compared).
///
/// ```
/// let mut stats = arena_b::LockFreeStats::default();
/// stats.hits = 3;
/// stats.misses = 1;
/// assert_eq!(stats.cache_hit_rate(), 0.75);
/// stats.record_deallocation();
/// assert_eq!(stats.deallocations, 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LockFreeStats {
    /// `get` calls served from the pool.
    pub hits: u64,
    /// `get` calls that had to make a new object.
    pub misses: u64,
    /// Objects given back to the pool (or dropped because it was full).
    pub deallocations: u64,
    /// Objects dropped because the pool was full when they came back.
    pub overflowed: u64,
}

impl LockFreeStats {
    /// Hits over all `get` calls, in `0.0..=1.0` (`0.0` before any call).
    pub fn cache_hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    /// Counts one deallocation in this snapshot (for callers that keep
    /// their own counters in a `LockFreeStats`).
    pub fn record_deallocation(&mut self) {
        self.deallocations += 1;
    }
}

/// A bounded, lock-free pool of reusable `T`s, shareable between threads.
///
/// ```
/// use std::sync::Arc;
/// use arena_b::LockFreePool;
///
/// let pool = Arc::new(LockFreePool::new(8, || Vec::<u32>::with_capacity(1024)));
/// std::thread::scope(|s| {
///     for t in 0..4 {
///         let pool = &pool;
///         s.spawn(move || {
///             for i in 0..100 {
///                 let mut buf = pool.get();
///                 buf.clear();
///                 buf.push(t * 1000 + i);
///             } // `buf` goes back to the pool here
///         });
///     }
/// });
/// let stats = pool.stats();
/// assert_eq!(stats.hits + stats.misses, 400);
/// assert!(stats.cache_hit_rate() > 0.5);
/// ```
pub struct LockFreePool<T> {
    idle: ArrayQueue<T>,
    make: Box<dyn Fn() -> T + Send + Sync>,
    hits: AtomicU64,
    misses: AtomicU64,
    deallocations: AtomicU64,
    overflowed: AtomicU64,
}

impl<T: Send> fmt::Debug for LockFreePool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFreePool")
            .field("capacity", &self.capacity())
            .field("idle", &self.idle.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<T: Send> LockFreePool<T> {
    /// A pool that keeps at most `capacity` idle objects and makes new ones
    /// with `make`.
    ///
    /// # Panics
    /// If `capacity` is 0.
    pub fn new(capacity: usize, make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        assert!(
            capacity > 0,
            "arena-b: a LockFreePool needs a capacity of at least 1"
        );
        LockFreePool {
            idle: ArrayQueue::new(capacity),
            make: Box::new(make),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
        }
    }

    /// An object from the pool, or a new one; it goes back when the guard
    /// drops.
    pub fn get(&self) -> Pooled<'_, T> {
        let value = match self.idle.pop() {
            Some(v) => {
                self.hits.fetch_add(1, Relaxed);
                v
            }
            None => {
                self.misses.fetch_add(1, Relaxed);
                (self.make)()
            }
        };
        Pooled {
            pool: self,
            value: Some(value),
        }
    }

    /// Puts `value` into the pool (dropping it if the pool is full).
    pub fn put(&self, value: T) {
        self.deallocations.fetch_add(1, Relaxed);
        if self.idle.push(value).is_err() {
            self.overflowed.fetch_add(1, Relaxed);
        }
    }

    /// The most idle objects the pool keeps.
    pub fn capacity(&self) -> usize {
        self.idle.capacity()
    }

    /// Idle objects in the pool now.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LockFreeStats {
        LockFreeStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            deallocations: self.deallocations.load(Relaxed),
            overflowed: self.overflowed.load(Relaxed),
        }
    }
}

/// An object borrowed from a [`LockFreePool`]; returned to it on drop.
pub struct Pooled<'p, T: Send> {
    pool: &'p LockFreePool<T>,
    value: Option<T>,
}

impl<T: Send> Pooled<'_, T> {
    /// Takes the object out for good (it will not go back to the pool).
    pub fn take(mut self) -> T {
        self.value
            .take()
            .expect("a Pooled guard always holds a value")
    }
}

impl<T: Send> Deref for Pooled<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
            .as_ref()
            .expect("a Pooled guard always holds a value")
    }
}

impl<T: Send> DerefMut for Pooled<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
            .as_mut()
            .expect("a Pooled guard always holds a value")
    }
}

impl<T: Send + fmt::Debug> fmt::Debug for Pooled<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: Send> Drop for Pooled<'_, T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.pool.put(value);
        }
    }
}
