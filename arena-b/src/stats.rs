//! Telemetry: [`ArenaStats`], [`ChunkUsage`] and the diagnostics sink.

use std::fmt;
use std::sync::Arc;

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
