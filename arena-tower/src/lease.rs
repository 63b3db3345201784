//! One request's lease of a pooled arena, and its release.
//!
//! A [`Lease`] lives in an `Arc` shared by every [`RequestArena`] handle of
//! the request (the request's extensions, the response future, the response
//! body, clones the handler made, and the owners of `alloc_bytes` buffers).
//! Its `Drop`, which runs once the last of them is gone, is the release:
//! stats, tracing, reset, back to the pool. The response's end is recorded
//! separately (`mark_end`), only to report how the request ended.
//!
//! [`RequestArena`]: crate::RequestArena

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arena_b::SyncArena;

use crate::pool::Pool;

/// How a request's response ended; the first end wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum End {
    /// Not ended yet (never reported: every path marks an end first).
    Open = 0,
    /// The body yielded its last frame.
    Finished = 1,
    /// The body yielded an error.
    BodyError = 2,
    /// The body was dropped before its end (the client went away).
    BodyDropped = 3,
    /// The inner service returned an error.
    HandlerFailed = 4,
    /// The response future was dropped before the response was ready
    /// (client gone, timeout, or a panic unwinding through it).
    HandlerDropped = 5,
    /// The response ended while `RequestArena` handles were still alive.
    HandleOutlived = 6,
}

impl End {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            End::Open => "open",
            End::Finished => "finished",
            End::BodyError => "body_error",
            End::BodyDropped => "body_dropped",
            End::HandlerFailed => "handler_failed",
            End::HandlerDropped => "handler_dropped",
            End::HandleOutlived => "handle_outlived",
        }
    }

    fn from_u8(v: u8) -> End {
        match v {
            1 => End::Finished,
            2 => End::BodyError,
            3 => End::BodyDropped,
            4 => End::HandlerFailed,
            5 => End::HandlerDropped,
            6 => End::HandleOutlived,
            _ => End::Open,
        }
    }
}

/// A leased arena; see the module docs.
pub(crate) struct Lease {
    /// `Some` until the release moves it back to the pool.
    arena: Option<SyncArena>,
    pool: Arc<Pool>,
    /// The span that was current when the request was called.
    pub(crate) span: tracing::Span,
    started: Instant,
    pool_hit: bool,
    end: AtomicU8,
    /// Live owners of `alloc_bytes` buffers: they keep the arena alive
    /// like handles, but are not "handles left behind" at the end.
    pub(crate) bytes_owners: AtomicUsize,
}

impl Lease {
    pub(crate) fn new(
        arena: SyncArena,
        pool: Arc<Pool>,
        span: tracing::Span,
        pool_hit: bool,
    ) -> Lease {
        Lease {
            arena: Some(arena),
            pool,
            span,
            started: Instant::now(),
            pool_hit,
            end: AtomicU8::new(End::Open as u8),
            bytes_owners: AtomicUsize::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn arena(&self) -> &SyncArena {
        match &self.arena {
            Some(arena) => arena,
            // `arena` is only taken in `drop`.
            None => unreachable!("arena-tower: lease used after release"),
        }
    }

    /// Whether the response has ended.
    pub(crate) fn ended(&self) -> bool {
        self.end.load(Ordering::Acquire) != End::Open as u8
    }

    /// Records the end of the response, if it is the first. `this` is the
    /// handle the caller is about to drop; any other live handle (not an
    /// `alloc_bytes` owner) is reported with a `WARN` and turns the end
    /// into [`End::HandleOutlived`].
    pub(crate) fn mark_end(this: &Arc<Lease>, reason: End) {
        if this.ended() {
            return;
        }
        let owners = this.bytes_owners.load(Ordering::Acquire);
        let others = Arc::strong_count(this).saturating_sub(1 + owners);
        let reason = if others > 0 {
            this.span.in_scope(|| {
                tracing::warn!(
                    target: "arena_tower",
                    handles = others,
                    response_end = reason.as_str(),
                    "the response ended while {others} RequestArena handle(s) are still alive; \
                     the request's arena is released when the last one is dropped"
                );
            });
            End::HandleOutlived
        } else {
            reason
        };
        // The first end wins; a lost race changes nothing.
        let _ = this.end.compare_exchange(
            End::Open as u8,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(arena) = self.arena.take() else {
            return;
        };
        let stats = arena.stats();
        let ended = End::from_u8(*self.end.get_mut());
        let held_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let pool = Arc::clone(&self.pool);
        if pool.config.record_span_fields && !self.span.is_disabled() {
            self.span.record("arena.bytes", stats.bytes_allocated);
            self.span.record("arena.chunks", stats.chunks);
            self.span.record("arena.peak_bytes", stats.peak_bytes);
            self.span.record("arena.pool_hit", self.pool_hit);
        }
        self.span.in_scope(|| {
            tracing::debug!(
                target: "arena_tower",
                bytes_allocated = stats.bytes_allocated,
                chunks = stats.chunks,
                peak_bytes = stats.peak_bytes,
                pool_hit = self.pool_hit,
                held_us,
                ended = ended.as_str(),
                "request arena released"
            );
        });
        pool.release(arena, stats.capacity);
    }
}
