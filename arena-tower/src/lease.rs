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

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
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
    /// The response ended while `RequestArena` handles were still alive
    /// (reported at the release, instead of the end itself).
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
    /// Set when handles outlived the response (reported once).
    outlived: AtomicBool,
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
            outlived: AtomicBool::new(false),
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

    /// Records the end of the response; the first end wins.
    pub(crate) fn mark_end(&self, reason: End) {
        // A lost race changes nothing.
        let _ = self.end.compare_exchange(
            End::Open as u8,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Called once the response has ended and the wrapper that ended it
    /// (body or future, with everything it owned) is gone: any handle
    /// still alive (not counting `alloc_bytes` owners and `this`) outlives
    /// the response. Reported with a `WARN` in the request's span, and as
    /// `ended = "handle_outlived"` at the release.
    pub(crate) fn check_outlived(this: &Arc<Lease>) {
        let owners = this.bytes_owners.load(Ordering::Acquire);
        let others = Arc::strong_count(this).saturating_sub(1 + owners);
        if others == 0 || this.outlived.swap(true, Ordering::AcqRel) {
            return;
        }
        let response_end = End::from_u8(this.end.load(Ordering::Acquire)).as_str();
        this.span.in_scope(|| {
            tracing::warn!(
                target: "arena_tower",
                handles = others,
                response_end,
                "the response ended while {others} RequestArena handle(s) are still alive; \
                 the request's arena is released when the last one is dropped"
            );
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(arena) = self.arena.take() else {
            return;
        };
        let stats = arena.stats();
        let ended = if *self.outlived.get_mut() {
            End::HandleOutlived
        } else {
            End::from_u8(*self.end.get_mut())
        };
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
        #[cfg(feature = "debug")]
        let mut arena = arena;
        #[cfg(feature = "debug")]
        self.span.in_scope(|| debug_report(&mut arena, ended));
        pool.release(arena, stats.capacity);
    }
}

/// Feature `debug`: the arena's own checks, in the request's span, before
/// the reset: `validate` (writes into memory freed by an earlier reset of
/// this pooled arena are an `ERROR`), and its `DebugStats` and leak report
/// (what the request still held at the release), at `WARN` when handles
/// outlived the response, else at `DEBUG`.
#[cfg(feature = "debug")]
fn debug_report(arena: &mut SyncArena, ended: End) {
    if let Err(corruption) = arena.validate() {
        tracing::error!(target: "arena_tower", %corruption, "request arena corrupted");
    }
    let outlived = ended == End::HandleOutlived;
    if !outlived && !tracing::enabled!(target: "arena_tower", tracing::Level::DEBUG) {
        return;
    }
    let debug_stats = arena.debug_stats();
    let leak_report = arena
        .leak_report()
        .map_or_else(|| "arena holds nothing".to_owned(), |r| r.to_string());
    if outlived {
        tracing::warn!(
            target: "arena_tower",
            ?debug_stats,
            %leak_report,
            "request arena released after handles outlived the response"
        );
    } else {
        tracing::debug!(target: "arena_tower", ?debug_stats, %leak_report, "request arena debug report");
    }
}
