//! Telemetry: [`ArenaStats`], [`ChunkUsage`] and the diagnostics sink.

#[allow(unused_imports)]
use crate::prelude::*;
use alloc::sync::Arc;
use core::fmt;

use crate::arena::Arena;

/// A snapshot of an arena's counters, from [`Arena::stats`](crate::Arena::stats).
///
/// Everything here is kept off the allocation fast path. What would cost on
/// a hot path is only counted with the `stats` feature: `allocations` (it
/// is `None` without it), and the rewind count and peak sampling of
/// `rewind_to_checkpoint`.
///
/// ```
/// let arena = arena_b::Arena::new();
/// arena.alloc(1u64);
/// let stats = arena.stats();
/// assert!(stats.bytes_allocated >= 8);
/// assert_eq!(stats.chunks, 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArenaStats {
    /// Bytes handed out and not yet freed (including alignment padding and
    /// the small header of values that need drop).
    pub bytes_allocated: usize,
    /// Bytes of all chunks the arena owns.
    pub capacity: usize,
    /// Number of chunks the arena owns.
    pub chunks: usize,
    /// The largest `bytes_allocated` seen, sampled when a chunk is entered
    /// or left, at scope exits, resets and this call, and (feature `stats`)
    /// at every `rewind_to_checkpoint`.
    pub peak_bytes: usize,
    /// Scope exits that gave memory back, plus (feature `stats`) calls of
    /// `rewind_to_checkpoint`: counting those costs on a hot path.
    pub rewinds: u64,
    /// Calls of `reset` and `reset_and_shrink`.
    pub resets: u64,
    /// Bytes left unused at the end of chunks when allocation moved on to
    /// the next chunk (cumulative).
    pub wasted_tail_bytes: usize,
    /// Times allocation moved on from a full chunk to another
    /// (cumulative). A loop that rewinds or resets settles at one switch
    /// per round at most: the chunks a round walked through are merged
    /// into one when the cursor moves back over them.
    pub chunk_switches: u64,
    /// Allocation calls served (feature `stats`; `None` without it). Those
    /// made through a scope are added when the scope ends.
    pub allocations: Option<u64>,
}

/// Capacity and use of one chunk, from [`Arena::chunk_usage`](crate::Arena::chunk_usage).
///
/// ```
/// let arena = arena_b::Arena::with_capacity(4096);
/// arena.alloc_str("hello");
/// let usage = arena.chunk_usage();
/// assert_eq!(usage[0].capacity, 4096);
/// assert_eq!(usage[0].used, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkUsage {
    /// Bytes in the chunk.
    pub capacity: usize,
    /// Bytes handed out from it (0 for free chunks kept for reuse).
    pub used: usize,
}

/// An event reported to the diagnostics sink set with
/// [`ArenaBuilder::diagnostics`](crate::ArenaBuilder::diagnostics).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiagnosticEvent {
    /// A chunk was obtained from the system allocator.
    ChunkAllocated {
        /// Its size in bytes.
        capacity: usize,
        /// The arena's capacity after it.
        total_capacity: usize,
    },
    /// Chunks were given back to the system allocator
    /// (`shrink_to_fit`, `reset_and_shrink`).
    ChunksFreed {
        /// How many.
        count: usize,
        /// Their total size.
        bytes: usize,
    },
    /// An allocation was refused because of the allocation limit.
    LimitReached {
        /// Bytes the allocation needed.
        requested: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The system allocator failed to provide a chunk.
    OutOfMemory {
        /// Bytes that were asked for.
        requested: usize,
    },
    /// Feature `virtual_memory`: more of the reserved region was committed.
    VirtualMemoryCommitted {
        /// Bytes committed now.
        committed: usize,
        /// Bytes reserved.
        reserved: usize,
    },
    /// Feature `virtual_memory`: a rewind or reset gave pages back.
    VirtualMemoryDecommitted {
        /// Bytes still committed.
        committed: usize,
        /// Bytes given back.
        released: usize,
    },
    /// Feature `virtual_memory`: the region could not be reserved, so the
    /// arena uses heap chunks.
    VirtualMemoryUnavailable {
        /// Bytes that were asked for.
        requested: usize,
        /// Why it failed.
        reason: crate::VirtualMemoryError,
    },
}

/// The callback type of the diagnostics sink.
pub(crate) type Sink = Arc<dyn Fn(&DiagnosticEvent) + Send + Sync>;

/// Reports `event` to the sink and, with feature `tracing`, as a `tracing`
/// event (target `arena_b`). Never prints.
pub(crate) fn report(sink: Option<&Sink>, event: DiagnosticEvent) {
    #[cfg(feature = "tracing")]
    match &event {
        DiagnosticEvent::LimitReached { .. } | DiagnosticEvent::OutOfMemory { .. } => {
            tracing::warn!(target: "arena_b", event = ?event, "arena allocation refused")
        }
        DiagnosticEvent::VirtualMemoryUnavailable { .. } => tracing::warn!(
            target: "arena_b",
            event = ?event,
            "virtual memory reservation failed; the arena falls back to heap chunks"
        ),
        _ => tracing::debug!(target: "arena_b", event = ?event, "arena chunk event"),
    }
    if let Some(sink) = sink {
        sink(&event);
    }
}

pub(crate) struct SinkDebug<'a>(pub(crate) &'a Option<Sink>);

impl fmt::Debug for SinkDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(<fn>)"
        } else {
            "None"
        })
    }
}

// ----- an arena's telemetry ---------------------------------------------------

impl Arena {
    /// Bytes handed out and not yet freed (padding and drop headers
    /// included; memory held by an open scope counts too).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.alloc(0u64);
    /// assert_eq!(arena.bytes_allocated(), 8);
    /// ```
    #[inline]
    pub fn bytes_allocated(&self) -> usize {
        let start = self.chunk_start.get();
        if start.is_null() {
            return 0;
        }
        self.used_before.get() + (self.cursor.ptr().addr() - start.addr())
    }

    /// Total bytes of the chunks the arena owns.
    ///
    /// ```
    /// assert_eq!(arena_b::Arena::with_capacity(4096).capacity(), 4096);
    /// ```
    pub fn capacity(&self) -> usize {
        self.counters.capacity.get()
    }

    /// Capacity and use of every chunk, in allocation order (free chunks,
    /// kept for reuse, last with `used == 0`).
    ///
    /// ```
    /// let arena = arena_b::Arena::new();
    /// arena.alloc(1u8);
    /// assert_eq!(arena.chunk_usage()[0].used, 1);
    /// ```
    pub fn chunk_usage(&self) -> Vec<ChunkUsage> {
        let chunks = self.chunks.borrow();
        let current = self.current.get();
        let here = self.pos();
        if here.ptr.is_null() {
            return chunks
                .iter()
                .map(|c| ChunkUsage {
                    capacity: c.capacity(),
                    used: 0,
                })
                .collect();
        }
        chunks
            .iter()
            .enumerate()
            .map(|(i, c)| ChunkUsage {
                capacity: c.capacity(),
                used: match i.cmp(&current) {
                    core::cmp::Ordering::Less => c.used,
                    core::cmp::Ordering::Equal => here.ptr.addr() - c.start().addr(),
                    core::cmp::Ordering::Greater => 0,
                },
            })
            .collect()
    }

    /// [`capacity`](Self::capacity) for a reader on another thread.
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn capacity_shared(&self) -> usize {
        self.counters.capacity.get()
    }

    /// Restarts [`ArenaStats::peak_bytes`] from the bytes allocated now.
    ///
    /// ```
    /// let mut arena = arena_b::Arena::new();
    /// arena.alloc([0u8; 1000]);
    /// arena.reset();
    /// arena.reset_peak();
    /// assert_eq!(arena.stats().peak_bytes, 0);
    /// ```
    pub fn reset_peak(&self) {
        self.counters.peak.set(self.bytes_allocated());
    }

    /// [`reset_peak`](Self::reset_peak) right after a reset, when nothing
    /// is allocated (a `SyncArena`'s reuse).
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn clear_peak(&self) {
        debug_assert_eq!(self.bytes_allocated(), 0);
        self.counters.peak.set(0);
    }

    /// A snapshot of the arena's counters.
    ///
    /// ```
    /// let mut arena = arena_b::Arena::new();
    /// arena.alloc(1u32);
    /// arena.reset();
    /// let stats = arena.stats();
    /// assert_eq!(stats.resets, 1);
    /// assert!(stats.peak_bytes >= 4);
    /// ```
    pub fn stats(&self) -> ArenaStats {
        self.note_peak();
        self.stats_shared()
    }

    /// The counters, read without writing anything: callable (by a
    /// `SyncArena`) from a thread that does not own this arena.
    pub(crate) fn stats_shared(&self) -> ArenaStats {
        let bytes_allocated = self.bytes_allocated_shared();
        ArenaStats {
            bytes_allocated,
            capacity: self.counters.capacity.get(),
            chunks: self.counters.chunks.get(),
            peak_bytes: self.counters.peak.get().max(bytes_allocated),
            rewinds: self.counters.rewinds.get() as u64,
            resets: self.counters.resets.get() as u64,
            wasted_tail_bytes: self.counters.wasted.get(),
            chunk_switches: self.counters.switches.get() as u64,
            #[cfg(feature = "stats")]
            allocations: Some(self.counters.allocations.get() as u64),
            #[cfg(not(feature = "stats"))]
            allocations: None,
        }
    }

    /// [`bytes_allocated`](Self::bytes_allocated) for a reader on another
    /// thread: retries while the owner is moving to another chunk, so the
    /// three fields it reads belong together.
    pub(crate) fn bytes_allocated_shared(&self) -> usize {
        use core::sync::atomic::{fence, Ordering};
        loop {
            let before = self.chunk_seq.get();
            if before % 2 == 1 {
                core::hint::spin_loop();
                continue;
            }
            fence(Ordering::Acquire);
            let start = self.chunk_start.get();
            let used = self.used_before.get();
            let ptr = self.cursor.published();
            fence(Ordering::Acquire);
            if self.chunk_seq.get() == before {
                return if start.is_null() {
                    0
                } else {
                    used + ptr.addr().saturating_sub(start.addr())
                };
            }
        }
    }

    #[inline]
    pub(crate) fn note_peak(&self) {
        let now = self.bytes_allocated();
        if now > self.counters.peak.get() {
            self.counters.peak.set(now);
        }
    }
}

impl Arena {
    /// Adds the allocations a scope made (feature `stats`).
    #[cfg(feature = "stats")]
    pub(crate) fn count_allocs(&self, n: usize) {
        self.counters.allocations.add(n);
    }
}
