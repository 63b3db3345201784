//! One request's lease of a pooled arena, and its release.
//!
//! A [`Lease`] is shared by every [`RequestArena`] handle of the request
//! (the response future, the response body, clones the handler made, and
//! the owners of `alloc_bytes` buffers) through counted references
//! ([`LeaseRef`](crate::lease_ref::LeaseRef)). The drop of the last one
//! releases the lease in place ([`Lease::released`]): stats, tracing,
//! reset, and the lease itself goes back to the pool with the arena inside,
//! so a lease in steady state allocates nothing. The response's end is
//! recorded separately (`mark_end`), only to report how the request ended.
//!
//! [`RequestArena`]: crate::RequestArena

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::lease_ref::LeaseBox;
use std::time::Instant;

use arena_b::SyncArena;

use crate::end::End;
use crate::handle::SpareBuffers;
use crate::pool::Pool;

/// A leased arena; see the module docs.
pub(crate) struct Lease {
    arena: SyncArena,
    /// The pool. `None` only during a release, which hands this reference
    /// to `Pool::recycle` (so the release clones no `Arc`), which puts it
    /// back when it pools the lease. (A pooled lease keeps its pool alive;
    /// `Pool::close` breaks that cycle.)
    pool: Option<Arc<Pool>>,
    /// Whether a request holds the lease (it is released at most once).
    leased: bool,
    /// `LeaseRef`s alive (see `lease_ref`); zero while pooled.
    pub(crate) refs: AtomicUsize,
    /// The span that was current when the request was called.
    span: tracing::Span,
    /// The request's span as the handler sees it, when that is another one
    /// (`ArenaLayer` outside `TraceLayer`): set once, by the extractor.
    seen_span: OnceLock<tracing::Span>,
    /// When the lease started, if the release event will be recorded.
    started: Option<Instant>,
    pool_hit: bool,
    end: AtomicU8,
    /// Set when handles outlived the response (reported once).
    outlived: AtomicBool,
    /// Live owners of `alloc_bytes` buffers: they keep the arena alive
    /// like handles, but are not "handles left behind" at the end.
    pub(crate) bytes_owners: AtomicUsize,
    /// `alloc_bytes` blocks free for reuse (see `SpareBuffers`).
    pub(crate) spare: SpareBuffers,
    /// Limit unwinds of this request that the layer caught and answered.
    caught_limits: AtomicU64,
}

impl Lease {
    /// A lease of a fresh arena of `pool` (a pool miss).
    pub(crate) fn new(arena: SyncArena, pool: Arc<Pool>) -> Lease {
        Lease {
            arena,
            pool: Some(pool),
            leased: false,
            refs: AtomicUsize::new(0),
            span: tracing::Span::none(),
            seen_span: OnceLock::new(),
            started: None,
            pool_hit: false,
            end: AtomicU8::new(End::Open as u8),
            outlived: AtomicBool::new(false),
            bytes_owners: AtomicUsize::new(0),
            spare: SpareBuffers::new(),
            caught_limits: AtomicU64::new(0),
        }
    }

    /// Starts a request on this (unshared) lease.
    #[inline]
    pub(crate) fn start(&mut self, span: Option<tracing::Span>, pool_hit: bool) {
        self.started =
            tracing::enabled!(target: "arena_tower", tracing::Level::DEBUG).then(Instant::now);
        self.leased = true;
        // `finish` left `Span::none()` here; moving another `none` in costs.
        if let Some(span) = span {
            self.span = span;
        }
        self.pool_hit = pool_hit;
        *self.end.get_mut() = End::Open as u8;
        *self.outlived.get_mut() = false;
        *self.bytes_owners.get_mut() = 0;
        *self.caught_limits.get_mut() = 0;
    }

    #[inline(always)]
    pub(crate) fn arena(&self) -> &SyncArena {
        &self.arena
    }

    /// The pool this lease came from (`None` only during its release).
    pub(crate) fn pool(&self) -> Option<&Pool> {
        self.pool.as_deref()
    }

    /// Gives a pooled lease its pool reference back (see `pool`).
    #[inline]
    pub(crate) fn set_pool(&mut self, pool: Arc<Pool>) {
        self.pool = Some(pool);
    }

    /// The request's span: the one the handler saw, if it told us (see
    /// [`Lease::saw_span`]), else the one current when the service was
    /// called.
    pub(crate) fn span(&self) -> &tracing::Span {
        self.seen_span.get().unwrap_or(&self.span)
    }

    /// The handler's code runs in the current span: if that is not the
    /// span the service was called in (the layer sits outside the one that
    /// makes the request's span, such as `TraceLayer`), report in it.
    pub(crate) fn saw_span(&self) {
        // Without a listener no span is current: skip the dispatcher's
        // look-up.
        if self.seen_span.get().is_some() || !anyone_listens() {
            return;
        }
        let current = tracing::dispatcher::get_default(|d| d.current_span().id().cloned());
        if current.is_some() && current != self.span.id() {
            let _ = self.seen_span.set(tracing::Span::current());
        }
    }

    /// Ends the request on this (unshared, released) lease before it is
    /// pooled: lets the request's spans go (a span stays open while
    /// anything holds it), forgets the spare buffers (the reset hands their
    /// memory out again) and returns the arena for the pool's reset.
    #[inline]
    pub(crate) fn finish(&mut self) -> &mut SyncArena {
        if !self.span.is_none() {
            self.span = tracing::Span::none();
        }
        if self.seen_span.get().is_some() {
            self.seen_span = OnceLock::new();
        }
        self.started = None;
        self.spare.clear();
        &mut self.arena
    }

    /// The layer caught (and answers) a limit unwind of this request.
    pub(crate) fn caught_limit(&self) {
        self.caught_limits.fetch_add(1, Ordering::AcqRel);
    }

    /// Limit unwinds of this request's arena the layer did not catch (a
    /// spawned task's, a destructor's while the response was dropped).
    pub(crate) fn uncaught_limits(&self) -> u64 {
        self.arena
            .limit_unwinds()
            .saturating_sub(self.caught_limits.load(Ordering::Acquire))
    }

    /// Whether the response has ended.
    pub(crate) fn ended(&self) -> bool {
        self.end.load(Ordering::Acquire) != End::Open as u8
    }

    /// How the response ended (`Open` while it runs).
    pub(crate) fn response_end(&self) -> End {
        End::from_u8(self.end.load(Ordering::Acquire))
    }

    /// Records that handles outlived the response; `true` the first time.
    pub(crate) fn mark_outlived(&self) -> bool {
        !self.outlived.swap(true, Ordering::AcqRel)
    }

    /// Records the end of the response; the first end wins. Only the
    /// request's one `EndGuard` (or `ArenaLayer::lease`, before the handle
    /// exists) ends it, so a load and a store do.
    #[inline]
    pub(crate) fn mark_end(&self, reason: End) {
        if self.end.load(Ordering::Relaxed) == End::Open as u8 {
            self.end.store(reason as u8, Ordering::Release);
        }
    }

    /// The last handle of `this` is gone: release the lease and recycle it
    /// (arena and allocation) into its pool.
    pub(crate) fn released(mut this: LeaseBox) {
        if let Some(pool) = this.get_mut().release() {
            Pool::recycle(pool, this);
        }
    }

    /// Reports the release of a leased lease and hands back its pool;
    /// `None` for a pooled (or released) one.
    ///
    /// `leased` is cleared first, so a lease is released (and reported) at
    /// most once even if the report panics: a `tracing` subscriber is user
    /// code, and this runs wherever the last handle was dropped, inside
    /// hyper's body polling or a destructor during an unwind, where a
    /// second panic would abort the process. A panicking report is skipped;
    /// the arena is recycled all the same.
    fn release(&mut self) -> Option<Arc<Pool>> {
        if !std::mem::replace(&mut self.leased, false) {
            return None;
        }
        let pool = self.pool.take()?;
        // Nothing to report without an event to emit, a span to fill, a
        // limit to warn about or `debug` checks: skip the unwind guard too.
        let quiet = self.started.is_none()
            && self.span.is_none()
            && self.seen_span.get().is_none()
            && !cfg!(feature = "debug")
            && self.arena.limit_unwinds() == *self.caught_limits.get_mut();
        if !quiet {
            quietly(|| self.report(&pool));
        }
        Some(pool)
    }

    /// Reports the release (tracing event, span fields, `debug` checks).
    fn report(&mut self, pool: &Pool) {
        let ended = if *self.outlived.get_mut() {
            End::HandleOutlived
        } else {
            End::from_u8(*self.end.get_mut())
        };
        let span = self.seen_span.get().unwrap_or(&self.span);
        let uncaught = self
            .arena
            .limit_unwinds()
            .saturating_sub(*self.caught_limits.get_mut());
        if uncaught > 0 {
            let max_request_bytes = pool.config.max_request_bytes.unwrap_or(0);
            span.in_scope(|| {
                tracing::warn!(
                    target: "arena_tower",
                    max_request_bytes,
                    unwinds = uncaught,
                    "{uncaught} allocation(s) of this request unwound at max_request_bytes \
                     ({max_request_bytes} bytes) out of the layer's reach (in a spawned task, \
                     a destructor while the response was dropped, or a response body the \
                     layer does not track, see ArenaLayer::track_body): nothing answered them"
                )
            });
        }
        let arena = &mut self.arena;
        let wants_event = self.started.is_some();
        // Only a span that declares the fields gets them (and the stats walk
        // is skipped for the others).
        let wants_fields = pool.config.record_span_fields
            && span
                .metadata()
                .is_some_and(|m| m.fields().field("arena.bytes").is_some());
        if !wants_event && !wants_fields {
            // Nobody listens: skip the stats walk (the common case under
            // load with logging at INFO).
            #[cfg(feature = "debug")]
            span.in_scope(|| debug_report(arena, ended));
            return;
        }
        let stats = arena.stats();
        if wants_fields {
            span.record("arena.bytes", stats.bytes_allocated);
            span.record("arena.chunks", stats.chunks);
            span.record("arena.peak_bytes", stats.peak_bytes);
            span.record("arena.pool_hit", self.pool_hit);
        }
        if let Some(started) = self.started {
            let held_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.in_scope(|| {
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
        }
        #[cfg(feature = "debug")]
        span.in_scope(|| debug_report(arena, ended));
    }
}

/// The span current when a request starts, in which its release reports;
/// `None`, skipping the look-up, when no subscriber listens.
#[inline]
pub(crate) fn current_span() -> Option<tracing::Span> {
    anyone_listens().then(tracing::Span::current)
}

/// Whether any subscriber is interested in anything (the global level
/// filter is not `OFF`): without one, no span can record or be entered.
#[inline]
fn anyone_listens() -> bool {
    use tracing::level_filters::LevelFilter;
    LevelFilter::current() != LevelFilter::OFF
}

/// Runs `f`, which emits `tracing` events from a place where a panic must
/// not escape (a release, a destructor): a panicking subscriber loses its
/// event, nothing more. `None` if `f` panicked.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
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
