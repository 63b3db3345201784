//! How a request's response ended: [`End`], and the [`EndGuard`] that the
//! response future and then the response body hold to record it.
//!
//! The end of the response and the release of the arena are two different
//! things. The arena is released when its last handle is gone (that is what
//! soundness needs); the end only says *how* the response ended (the
//! release event's `ended` field) and lets the guard's own handle go early.
//! Handles still alive at the end, other than the owners of `alloc_bytes`
//! buffers, outlive the response and are reported.

use std::fmt;
use std::sync::atomic::Ordering;

use crate::handle::RequestArena;
use crate::lease_ref::LeaseRef;

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
    /// The body was dropped before its end: the client went away, or the
    /// server did not send it (`HEAD`, 204 and 304 responses).
    BodyDropped = 3,
    /// The inner service returned an error.
    HandlerFailed = 4,
    /// The response future was dropped before the response was ready
    /// (client gone, timeout, or a panic unwinding through it).
    HandlerDropped = 5,
    /// The response ended while `RequestArena` handles were still alive
    /// (reported at the release, instead of the end itself).
    HandleOutlived = 6,
    /// The request hit its `max_request_bytes` limit: the handler or the
    /// body unwound with `arena_b::LimitExceeded`, and the layer answered
    /// the configured status (or ended the body with an error).
    OverLimit = 7,
    /// The handler answered and the response went on untracked (the
    /// default, [`ResponseEnd`]): the body's own end is not observed.
    Responded = 8,
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
            End::OverLimit => "over_limit",
            End::Responded => "responded",
        }
    }

    pub(crate) fn from_u8(v: u8) -> End {
        match v {
            1 => End::Finished,
            2 => End::BodyError,
            3 => End::BodyDropped,
            4 => End::HandlerFailed,
            5 => End::HandlerDropped,
            6 => End::HandleOutlived,
            7 => End::OverLimit,
            8 => End::Responded,
            _ => End::Open,
        }
    }
}

/// Holds a request's handle until it is dropped, and records how the
/// response ended (`end`); dropping it unended records `on_drop`. It is the
/// last field of the body or future that owns it, so it drops after what
/// they wrapped: then it checks whether other handles outlived the
/// response, and lets its own go, which releases the arena when it was the
/// last.
pub(crate) struct EndGuard {
    handle: Option<RequestArena>,
    ended: bool,
    /// The request's arena can unwind with its limit: its owner catches
    /// the unwinds of what it wraps ([`catch_limit_unwind`]).
    ///
    /// [`catch_limit_unwind`]: crate::future::catch_limit_unwind
    catch: bool,
    on_drop: End,
}

impl EndGuard {
    pub(crate) fn new(handle: RequestArena, on_drop: End, catch: bool) -> EndGuard {
        EndGuard {
            handle: Some(handle),
            ended: false,
            catch,
            on_drop,
        }
    }

    /// A guard with no request: the body of a response the layer made
    /// itself, whose request has ended already.
    pub(crate) fn ended() -> EndGuard {
        EndGuard {
            handle: None,
            ended: true,
            catch: false,
            on_drop: End::Finished,
        }
    }

    /// The request's arena, while this guard holds its handle.
    pub(crate) fn arena(&self) -> Option<&arena_b::SyncArena> {
        self.handle.as_ref().map(|h| h.arena())
    }

    /// Whether the request's arena can unwind with its limit, so that what
    /// this guard's owner wraps runs under `catch_unwind`.
    #[inline]
    pub(crate) fn catches_limits(&self) -> bool {
        self.catch
    }

    /// The request's handle, while this guard holds it.
    #[inline]
    pub(crate) fn handle(&self) -> Option<&RequestArena> {
        self.handle.as_ref()
    }

    /// The end under [`ResponseEnd`]: the handler answered, and the
    /// response goes on untracked. Our handle goes now (releasing the arena
    /// unless other handles, such as the body's, still hold it); with the
    /// body untracked, handles still alive cannot be told from handles the
    /// body holds, so none is reported.
    #[inline]
    pub(crate) fn responded(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(handle) = self.handle.take() {
            handle.lease().mark_end(End::Responded);
        }
    }

    /// Whether an allocation of this request unwound at its byte limit
    /// where the layer could not catch it (then a `WARN` says so once).
    pub(crate) fn limit_hit_out_of_reach(&self) -> bool {
        self.handle
            .as_ref()
            .is_some_and(|h| h.lease().uncaught_limits() > 0)
    }

    /// A limit unwind caught without a report of its own (a destructor's,
    /// after the first): not one "out of the layer's reach".
    pub(crate) fn caught_limit(&self) {
        if let Some(handle) = &self.handle {
            handle.lease().caught_limit();
        }
    }

    /// The request hit its byte limit: `limit` unwound out of the handler
    /// (`in_body` false: the layer answers with the returned status) or out
    /// of the response body (the body ends with an error). A `WARN` in the
    /// request's span names the limit and what was asked; then the end.
    pub(crate) fn over_limit(
        &mut self,
        limit: &arena_b::LimitExceeded,
        in_body: bool,
    ) -> http::StatusCode {
        let mut status = http::StatusCode::PAYLOAD_TOO_LARGE;
        if let Some(handle) = &self.handle {
            let lease = handle.lease();
            lease.caught_limit();
            if let Some(pool) = lease.pool() {
                status = pool.config.over_limit_status;
            }
            let (requested, max_request_bytes) = (limit.requested(), limit.limit());
            // User code (a subscriber) must not turn this into a second panic.
            crate::lease::quietly(|| {
                lease.span().in_scope(|| {
                    if in_body {
                        tracing::warn!(
                            target: "arena_tower",
                            max_request_bytes,
                            requested,
                            "request over its arena limit while sending the response body: an \
                             allocation of {requested} bytes would exceed max_request_bytes \
                             ({max_request_bytes} bytes); the body ends with an error"
                        );
                    } else {
                        tracing::warn!(
                            target: "arena_tower",
                            max_request_bytes,
                            requested,
                            status = status.as_u16(),
                            "request over its arena limit: an allocation of {requested} bytes \
                             would exceed max_request_bytes ({max_request_bytes} bytes); \
                             answered {status}"
                        );
                    }
                })
            });
        }
        self.end(End::OverLimit);
        status
    }

    /// Hands the handle over (to the response body); this guard is then
    /// inert.
    pub(crate) fn take(&mut self) -> Option<RequestArena> {
        self.ended = true;
        self.handle.take()
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// The end: records `reason` (the first end wins). If no other handle
    /// is alive (`alloc_bytes` buffers aside), lets ours go now, which
    /// releases the arena unless such a buffer still holds it. Otherwise
    /// ours is kept until this guard drops, after what the body or future
    /// wrapped, to tell handles left in it from handles that outlive the
    /// response.
    pub(crate) fn end(&mut self, reason: End) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(handle) = &self.handle {
            let lease = handle.lease();
            lease.mark_end(reason);
            if other_handles(lease) == 0 {
                self.handle = None;
            }
        }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.end(self.on_drop);
        if let Some(handle) = self.handle.take() {
            warn_if_outlived(handle.lease());
        }
    }
}

impl fmt::Debug for EndGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndGuard")
            .field("ended", &self.is_ended())
            .finish()
    }
}

/// Handles of `lease` other than the caller's own and the owners of
/// `alloc_bytes` buffers (which keep the arena like handles, but are not
/// "handles left behind" at the end).
fn other_handles(lease: &LeaseRef) -> usize {
    let owners = lease.bytes_owners.load(Ordering::Acquire);
    lease.count().saturating_sub(1 + owners)
}

/// Called by the body or future that ended the response, once what it
/// wrapped is gone and while it still holds `this`: any other handle
/// still alive (not counting `alloc_bytes` owners) outlives the
/// response. Reported with a `WARN` in the request's span, and as
/// `ended = "handle_outlived"` at the release.
fn warn_if_outlived(this: &LeaseRef) {
    let others = other_handles(this);
    if others == 0 || !this.mark_outlived() {
        return;
    }
    let response_end = this.response_end().as_str();
    // In a destructor: a panicking subscriber must not abort the process.
    crate::lease::quietly(|| {
        this.span().in_scope(|| {
            tracing::warn!(
                target: "arena_tower",
                handles = others,
                response_end,
                "the response ended while {others} RequestArena handle(s) are still alive; \
                 the request's arena is released when the last one is dropped"
            );
        })
    });
}

/// Where a request's response ends, for the release: the type parameter of
/// [`ArenaLayer`](crate::ArenaLayer), [`ArenaService`](crate::ArenaService)
/// and [`ResponseFuture`](crate::ResponseFuture). Either [`ResponseEnd`]
/// (the default) or [`BodyEnd`] (from
/// [`ArenaLayer::track_body`](crate::ArenaLayer::track_body)).
pub trait EndAt: sealed::Sealed + Send + Sync + 'static {}

/// The default [`EndAt`]: the response ends when the handler has answered.
/// The response body passes through unchanged (its type too, so axum does
/// not box it again), and the layer's handle goes as soon as the response
/// is ready; a body that holds `RequestArena` handles or
/// [`alloc_bytes`](crate::RequestArena::alloc_bytes) buffers still keeps
/// the arena until it is done with them, so this is as sound as
/// [`BodyEnd`]. What it does not give: the `ended` reasons of the body
/// (`finished`, `body_error`, `body_dropped`: the release says
/// `responded`), the `WARN` when handles outlive the response (they cannot
/// be told from the body's), and a clean error when a body that allocates
/// while it streams hits `max_request_bytes` (the unwind then ends the
/// connection's task, and the release `WARN`s that it was not answered).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseEnd;

/// The [`EndAt`] of [`ArenaLayer::track_body`](crate::ArenaLayer::track_body):
/// the response ends when its body does. The body is wrapped in an
/// [`ArenaBody`](crate::ArenaBody) that holds the arena until its last
/// frame, reports how it ended (`finished`, `body_error`, `body_dropped`),
/// `WARN`s about handles that outlive it, and ends with an error if it hits
/// `max_request_bytes` while it streams. The cost: axum boxes any response
/// body that is not its own `Body`, one heap allocation per response, and
/// the wrapper's work per frame (see `docs/performance.md`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyEnd;

impl EndAt for ResponseEnd {}
impl EndAt for BodyEnd {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ResponseEnd {}
    impl Sealed for super::BodyEnd {}
}
