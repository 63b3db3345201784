//! What a [`SyncArena`] holds, summed over its threads' parts: capacity,
//! bytes allocated, [`ArenaStats`], and (feature `debug`) the debug
//! counters, validation and leak reports.
//!
//! The `&self` readers sum the parts while their owners keep allocating;
//! the fields they read are owner-written atomics (see the module docs of
//! [`super`]). The `&mut self` ones go through `parts_mut`, so no thread
//! allocates while freed memory is inspected.

use super::SyncArena;
use crate::stats::ArenaStats;

impl SyncArena {
    /// Bytes of the chunks owned by all threads' parts.
    ///
    /// ```
    /// let arena = arena_b::Arena::builder().chunk_size(4096).build_sync();
    /// arena.alloc(1u8);
    /// assert_eq!(arena.capacity(), 4096);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.shards()
            .map(|s| s.arena.capacity_shared())
            .sum::<usize>()
            + self.shared_buffer_capacity()
    }

    /// Bytes of the shared lock-free buffer (feature `lockfree`).
    pub(super) fn shared_buffer_capacity(&self) -> usize {
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = &self.lockfree {
            return buffer.capacity();
        }
        0
    }

    /// Bytes allocated, summed over threads. While other threads allocate
    /// this is a snapshot of each thread's part, not of all at one instant.
    pub fn bytes_allocated(&self) -> usize {
        self.shards()
            .map(|s| s.arena.bytes_allocated_shared())
            .sum::<usize>()
            + self.shared_buffer_used()
    }

    /// Bytes handed out by the shared lock-free buffer (feature `lockfree`).
    fn shared_buffer_used(&self) -> usize {
        #[cfg(feature = "lockfree")]
        if let Some(buffer) = &self.lockfree {
            return buffer.used();
        }
        0
    }

    /// Counters summed over threads (`peak_bytes` is the sum of the
    /// threads' sampled peaks).
    pub fn stats(&self) -> ArenaStats {
        let mut stats = self.shards().map(|s| s.arena.stats_shared()).fold(
            ArenaStats::default(),
            |mut sum, s| {
                sum.bytes_allocated += s.bytes_allocated;
                sum.capacity += s.capacity;
                sum.chunks += s.chunks;
                sum.peak_bytes += s.peak_bytes;
                sum.rewinds += s.rewinds;
                sum.resets += s.resets;
                sum.wasted_tail_bytes += s.wasted_tail_bytes;
                sum.chunk_switches += s.chunk_switches;
                sum.allocations = match (sum.allocations, s.allocations) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                sum
            },
        );
        stats.bytes_allocated += self.shared_buffer_used();
        stats.capacity += self.shared_buffer_capacity();
        stats
    }

    /// Feature `debug`: the debug counters summed over threads.
    #[cfg(feature = "debug")]
    pub fn debug_stats(&self) -> crate::DebugStats {
        let mut sum = crate::DebugStats::default();
        for shard in self.shards() {
            sum += shard.arena.debug_stats_shared();
        }
        sum
    }

    /// Feature `debug`: [`Arena::validate`](crate::Arena::validate) on every thread's part
    /// (`&mut self`: no thread may allocate while freed memory is read).
    #[cfg(feature = "debug")]
    pub fn validate(&mut self) -> Result<(), crate::Corruption> {
        for part in self.parts_mut() {
            part.validate()?;
        }
        Ok(())
    }

    /// Feature `debug`: what every thread's part still holds, merged, or
    /// `None` if the arena holds nothing. See [`Arena::leak_report`](crate::Arena::leak_report).
    ///
    /// ```
    /// let mut arena = arena_b::SyncArena::new();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| arena.alloc(String::from("kept")));
    /// });
    /// let report = arena.leak_report().unwrap();
    /// assert_eq!(report.values_pending_drop, 1);
    /// arena.reset();
    /// assert!(arena.leak_report().is_none());
    /// ```
    #[cfg(feature = "debug")]
    pub fn leak_report(&mut self) -> Option<crate::LeakReport> {
        let mut merged: Option<crate::LeakReport> = None;
        for part in self.parts_mut() {
            let Some(report) = part.leak_report() else {
                continue;
            };
            match &mut merged {
                None => merged = Some(report),
                Some(m) => {
                    m.bytes += report.bytes;
                    m.values_pending_drop += report.values_pending_drop;
                    m.chunks += report.chunks;
                    m.open_scopes += report.open_scopes;
                    m.backtraces.extend(report.backtraces);
                }
            }
        }
        merged
    }
}
