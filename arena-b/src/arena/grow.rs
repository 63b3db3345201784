//! Chunk growth, the allocation limit's budget, and moves of the cursor
//! between chunks.

use super::*;
#[allow(unused_imports)]
use crate::prelude::*;
use crate::typed::Mode;

/// How big a new chunk is.
#[derive(Clone, Copy)]
pub(crate) enum Growth {
    /// Double the arena's capacity, within `chunk_size..=max_chunk_size`
    /// (and at least the request).
    Policy,
    /// Exactly the request (rounded to the chunk alignment): `reserve_size`.
    Exact,
}

impl Arena {
    #[cold]
    #[inline(never)]
    pub(crate) fn move_to_chunk(&self, pos: Pos) {
        if pos.ptr.is_null() && self.chunk_start.get().is_null() {
            // Already at the start, with no chunk in use (a new arena, or a
            // `SyncArena` part after `reset`): stay out of the chunks, so
            // the next allocation takes one through `grow` (which budgets
            // it against a shared limit).
            return;
        }
        let left = self.current.get();
        let chunks = self.chunks.borrow();
        let Some(chunk) = chunks.get(pos.chunk) else {
            debug_assert_eq!(pos, Pos::ZERO);
            return;
        };
        self.note_peak();
        let ptr = if pos.ptr.is_null() {
            chunk.start()
        } else {
            pos.ptr
        };
        debug_assert!(chunk.start() <= ptr && ptr <= chunk.end());
        self.chunk_move(|| {
            self.used_before
                .set(chunks[..pos.chunk].iter().map(|c| c.used).sum());
            self.current.set(pos.chunk);
            self.chunk_start.set(chunk.start());
            // SAFETY: `ptr` is in this chunk (or its start), at or before the
            // position being left, so `[ptr, end)` holds nothing anyone may
            // still use (the callers free it first); the arena owns the chunk.
            unsafe { self.cursor.set(ptr, chunk.end()) };
        });
        drop(chunks);
        if left > pos.chunk + 1 {
            self.merge_idle(pos.chunk + 1, left);
        }
    }

    /// The cursor moved back from chunk `last` to before `first`, so chunks
    /// `first..=last` are idle, and the loop that filled them will likely
    /// fill them again: replace them with one chunk of their total size, so
    /// that the next round switches chunks once instead of once per chunk
    /// (bumpalo keeps its one largest chunk at `reset` for the same reason).
    /// Skipped when the system cannot give the merged chunk, or when a
    /// limit shared with other arenas does not count them all.
    #[cold]
    #[inline(never)]
    fn merge_idle(&self, first: usize, last: usize) {
        let mut chunks = self.chunks.borrow_mut();
        let range = &chunks[first..=last];
        let shared = self.config.shared_limit().is_some();
        #[cfg(feature = "virtual_memory")]
        if range.iter().any(|c| c.reserved() > 0) {
            return;
        }
        if shared && !range.iter().all(|c| c.budgeted) {
            return;
        }
        let total: usize = range.iter().map(RawChunk::capacity).sum();
        let align = range
            .iter()
            .map(RawChunk::align)
            .max()
            .unwrap_or(CHUNK_ALIGN);
        let Some(mut merged) = RawChunk::allocate(total, align) else {
            return;
        };
        // The budget of the chunks it replaces carries over unchanged.
        merged.budgeted = shared;
        let replaced: SmallVec<[RawChunk; 4]> = chunks.drain(first..=last).collect();
        chunks.insert(first, merged);
        drop(chunks);
        self.counters
            .chunks
            .set(self.counters.chunks.get() + 1 - replaced.len());
    }

    /// Moves the cursor to the start of a chunk where `layout` fits: a free
    /// one after the current chunk if any fits, else a new one.
    ///
    /// The "chunk allocated" event is returned, not reported: the sink is
    /// user code and may allocate in this arena, so callers report it only
    /// after their own bump or carve is done (a scope, for one, must not see
    /// the arena move between its check and its carve). Failures are
    /// reported here, after the chunk list is released: nothing changed.
    #[cold]
    #[inline(never)]
    pub(crate) fn grow(
        &self,
        layout: Layout,
        growth: Growth,
        mode: Mode,
    ) -> Result<Pending, AllocError> {
        let mut chunks = self.chunks.borrow_mut();
        #[cfg(feature = "virtual_memory")]
        if let Some(event) = self.commit_more(&mut chunks, layout) {
            return Ok(Pending(Some(event)));
        }
        let has_current = !self.chunk_start.get().is_null();
        let next = if has_current {
            self.current.get() + 1
        } else {
            0
        };
        let mut event = None;
        // An idle chunk that fits, if the shared limit (if any) can take its
        // bytes again; else a new chunk, which falls back to the size needed.
        let reusable = (next..chunks.len())
            .find(|&j| chunks[j].fits(layout) && self.budget_reused(&mut chunks[j]));
        match reusable {
            Some(j) => chunks.swap(next, j),
            None => {
                let chunk = match self.new_chunk(layout, growth, mode) {
                    Ok(chunk) => chunk,
                    Err((err, event)) => {
                        drop(chunks);
                        report(self.config.sink.as_ref(), event);
                        self.refused(&err, mode);
                        return Err(err);
                    }
                };
                let total = self.counters.capacity.get() + chunk.capacity();
                self.counters.capacity.set(total);
                event = Some(DiagnosticEvent::ChunkAllocated {
                    capacity: chunk.capacity(),
                    total_capacity: total,
                });
                chunks.push(chunk);
                self.counters.chunks.set(chunks.len());
                let last = chunks.len() - 1;
                chunks.swap(next, last);
            }
        }
        #[cfg(feature = "debug")]
        if self.config.debug_backtrace {
            chunks[next].opened_at = Some(std::backtrace::Backtrace::force_capture().to_string());
        }
        if has_current {
            self.counters.switches.add(1);
            self.note_peak();
            let current = self.current.get();
            let used = self.cursor.ptr().addr() - self.chunk_start.get().addr();
            chunks[current].used = used;
            self.counters.wasted.add(self.cursor.remaining());
        }
        let chunk = &chunks[next];
        let used_before = self.used_before.get()
            + if has_current {
                chunks[self.current.get()].used
            } else {
                0
            };
        self.chunk_move(|| {
            self.used_before.set(used_before);
            self.current.set(next);
            self.chunk_start.set(chunk.start());
            // SAFETY: the chunk is owned by the arena and, being after the old
            // current chunk (or the first), holds nothing.
            unsafe { self.cursor.set(chunk.start(), chunk.end()) };
        });
        Ok(Pending(event))
    }

    /// Allocates a chunk for `layout` following the growth policy and the
    /// allocation limit. A chunk the policy sizes that the limit or the
    /// system allocator refuses falls back to exactly what `layout` needs.
    pub(crate) fn new_chunk(
        &self,
        layout: Layout,
        growth: Growth,
        mode: Mode,
    ) -> Result<RawChunk, (AllocError, DiagnosticEvent)> {
        let needed = layout.size();
        let total = self.counters.capacity.get();
        let grown = match growth {
            Growth::Policy => total.clamp(self.config.chunk_size, self.config.max_chunk_size),
            Growth::Exact => needed,
        };
        let round = |n: usize| {
            n.checked_add(CHUNK_ALIGN - 1)
                .map(|n| n & !(CHUNK_ALIGN - 1))
        };
        let oom = |chunk: usize| {
            (
                AllocError::out_of_memory(needed, chunk),
                DiagnosticEvent::OutOfMemory { requested: chunk },
            )
        };
        let refused = |limit: usize| {
            (
                self.config.limit_error(needed, limit),
                DiagnosticEvent::LimitReached {
                    requested: needed,
                    limit,
                },
            )
        };
        // A size that cannot even be rounded is one no system can provide.
        let exact = round(needed.max(1)).ok_or_else(|| oom(needed))?;
        let mut capacity = round(needed.max(grown)).ok_or_else(|| oom(needed))?;
        if let Some(limit) = self.config.allocation_limit {
            let room = limit.saturating_sub(total);
            if capacity > room {
                capacity = exact;
                if capacity > room && !self.over_limit_allowed(mode) {
                    return Err(refused(limit));
                }
            }
        }
        if let Some(shared) = self.config.shared_limit() {
            if !shared.try_take(capacity) {
                capacity = exact;
                if !shared.try_take(capacity) {
                    if !self.over_limit_allowed(mode) {
                        return Err(refused(shared.limit));
                    }
                    shared.take(capacity);
                }
            }
        }
        let mut chunk = match RawChunk::allocate(capacity, layout.align()) {
            Some(chunk) => chunk,
            None if capacity > exact => {
                // The policy's size may be more than the system has left.
                self.give_back_shared(capacity - exact);
                capacity = exact;
                RawChunk::allocate(capacity, layout.align()).ok_or_else(|| {
                    self.give_back_shared(capacity);
                    oom(capacity)
                })?
            }
            None => {
                self.give_back_shared(capacity);
                return Err(oom(capacity));
            }
        };
        chunk.budgeted = self.config.shared_limit().is_some();
        Ok(chunk)
    }

    /// Whether an allocation may go past the limit: only while this thread
    /// unwinds (a destructor running during a panic, the limit's own unwind
    /// included), for a caller that would otherwise unwind again, which
    /// would abort the process. The request is being torn down anyway.
    #[cold]
    fn over_limit_allowed(&self, mode: Mode) -> bool {
        self.config.limit_policy == crate::LimitPolicy::Unwind
            && crate::limit::panicking()
            && mode.unwinds()
    }

    /// After a refusal has been reported: under `LimitPolicy::Unwind`, a
    /// plain method or the `Allocator` interface unwinds with the limit
    /// (the books are untouched: nothing changed before the refusal).
    #[cold]
    #[inline(never)]
    pub(crate) fn refused(&self, err: &AllocError, mode: Mode) {
        if err.unwinds() && mode.unwinds() {
            #[cfg(feature = "std")]
            if let Some(sync) = &self.config.sync {
                sync.note_limit_unwind();
            }
            crate::limit::unwind(crate::LimitExceeded::from_error(err));
        }
    }

    /// An idle chunk is put to use again: if it was given back to the
    /// shared limit (by `reset`), take its bytes again. `false` if the
    /// limit has no room for it (the caller takes a new chunk of the size
    /// it needs instead).
    pub(crate) fn budget_reused(&self, chunk: &mut RawChunk) -> bool {
        let Some(shared) = self.config.shared_limit() else {
            return true;
        };
        if !chunk.budgeted {
            if !shared.try_take(chunk.capacity()) {
                return false;
            }
            chunk.budgeted = true;
        }
        true
    }

    /// After `reset`, with a limit shared with other arenas (a
    /// `SyncArena`'s parts): every chunk is idle, so its bytes go back to
    /// the limit and one thread's idle chunks do not count against
    /// another's allocations. The cursor leaves the first chunk too (the
    /// state of a new arena), so that the next allocation goes through
    /// `grow`, which takes a chunk's bytes again before using it.
    #[inline]
    pub(crate) fn unbudget_idle_chunks(&self) {
        // Only the parts of a `SyncArena` with a limit budget their chunks.
        if let Some(shared) = self.config.shared_limit() {
            self.unbudget_idle_chunks_from(shared);
        }
    }

    #[inline(never)]
    fn unbudget_idle_chunks_from(&self, shared: &crate::builder::SharedLimit) {
        let mut chunks = self.chunks.borrow_mut();
        for chunk in chunks.iter_mut().filter(|c| c.budgeted) {
            chunk.budgeted = false;
            shared.give_back(chunk.capacity());
        }
        self.chunk_move(|| {
            self.chunk_start.set(core::ptr::null_mut());
            self.used_before.set(0);
            self.current.set(0);
            // SAFETY: the empty window `[null, null)` hands out nothing.
            unsafe {
                self.cursor
                    .set(core::ptr::null_mut(), core::ptr::null_mut())
            };
        });
    }

    /// Returns chunk bytes to the limit shared with other arenas, if any.
    pub(crate) fn give_back_shared(&self, bytes: usize) {
        if let Some(shared) = self.config.shared_limit() {
            shared.give_back(bytes);
        }
    }

    /// Brackets a move of the cursor to another chunk (see `chunk_seq`).
    pub(crate) fn chunk_move<R>(&self, f: impl FnOnce() -> R) -> R {
        use core::sync::atomic::{fence, Ordering};
        let seq = self.chunk_seq.get();
        self.chunk_seq.set(seq + 1);
        fence(Ordering::Release);
        let r = f();
        fence(Ordering::Release);
        self.chunk_seq.set(seq + 2);
        r
    }
}
