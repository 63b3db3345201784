//! [`ResponseFuture`]: the response future of [`ArenaService`](crate::ArenaService).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use arena_b::LimitExceeded;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use crate::body::ArenaBody;
use crate::current;
use crate::end::{BodyEnd, End, EndGuard, ResponseEnd};

pin_project! {
    /// The future returned by [`ArenaService::call`](tower_service::Service::call):
    /// the inner service's future, polled with the request's handle as
    /// [`RequestArena::current`](crate::RequestArena::current).
    ///
    /// Under [`ResponseEnd`] (the default) the response passes through
    /// unchanged and the future lets its handle go once the response is
    /// ready (`ended = "responded"`). Under [`BodyEnd`]
    /// ([`ArenaLayer::track_body`](crate::ArenaLayer::track_body)) the
    /// response body is wrapped in an [`ArenaBody`] that holds the handle
    /// until the body ends.
    ///
    /// If the inner future fails, or is dropped before it completes (the
    /// client went away, a timeout fired, a panic unwound through it), the
    /// response has ended without a body and this future lets its handle go
    /// (`ended = "handler_failed"` or `"handler_dropped"` in the release
    /// event).
    ///
    /// If the handler hits the request's byte limit
    /// ([`ArenaLayer::max_request_bytes`](crate::ArenaLayer::max_request_bytes)),
    /// its allocation unwinds with an [`arena_b::LimitExceeded`]; this
    /// future catches that payload (and only that one: any other panic
    /// continues unchanged), drops the handler's future and answers with
    /// the layer's [`over_limit_status`](crate::ArenaLayer::over_limit_status)
    /// and an empty body (`ended = "over_limit"`).
    pub struct ResponseFuture<F, E = ResponseEnd> {
        #[pin]
        state: State<F>,
        guard: EndGuard,
        end: PhantomData<fn() -> E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Running { #[pin] inner: F },
        // The inner service's `call` itself hit the limit.
        OverLimit { limit: LimitExceeded },
        Done,
    }
}

impl<F, E> ResponseFuture<F, E> {
    pub(crate) fn new(inner: F, guard: EndGuard) -> ResponseFuture<F, E> {
        ResponseFuture {
            state: State::Running { inner },
            guard,
            end: PhantomData,
        }
    }

    pub(crate) fn over_limit(limit: LimitExceeded, guard: EndGuard) -> ResponseFuture<F, E> {
        ResponseFuture {
            state: State::OverLimit { limit },
            guard,
            end: PhantomData,
        }
    }
}

/// The limit payload of a caught panic, if the request's own arena raised
/// it; any other panic (another arena's limit included) goes on unwinding.
pub(crate) fn limit_or_resume(
    payload: Box<dyn std::any::Any + Send>,
    guard: &EndGuard,
) -> LimitExceeded {
    match payload.downcast::<LimitExceeded>() {
        Ok(limit) if guard.arena().is_some_and(|arena| limit.is_from(arena)) => *limit,
        Ok(other) => resume_unwind(other),
        Err(other) => resume_unwind(other),
    }
}

/// Runs `f`, catching its unwind if `catch` (the request's arena can
/// unwind with its limit, [`Config::unwinds_at_limit`]); otherwise a panic
/// unwinds through, as it would after `limit_or_resume` anyway, without
/// the cost of a catch (the moves in and out of it).
///
/// [`Config::unwinds_at_limit`]: crate::pool::Config::unwinds_at_limit
#[inline(always)]
pub(crate) fn catch_limit_unwind<R>(catch: bool, f: impl FnOnce() -> R) -> std::thread::Result<R> {
    if catch {
        catch_unwind(AssertUnwindSafe(f))
    } else {
        Ok(f())
    }
}

/// Replaces the value in `slot` by `empty`, catching a limit unwind of
/// the old value's destructors (one that allocates past the limit once the
/// first unwind is caught, when nothing unwinds any more): the slot holds
/// `empty` either way, since an assignment writes the new value even when
/// dropping the old one unwinds.
pub(crate) fn drop_catching_limit<T>(
    slot: Pin<&mut T>,
    empty: T,
    guard: &EndGuard,
    catch: bool,
) -> Option<LimitExceeded> {
    catch_limit_unwind(catch, move || {
        let mut slot = slot;
        slot.set(empty)
    })
    .err()
    .map(|payload| limit_or_resume(payload, guard))
}

/// Polls the inner future of a [`ResponseFuture`] with the request as the
/// thread's current one, catching its limit unwinds: the poll of `BodyEnd`
/// futures, and of `ResponseEnd` ones whose arena can unwind at its limit
/// (the others take a fast path in their `poll` that does the same steps
/// in the same order; keep the two in step). Its output goes
/// through `respond` (with the guard, to record the end); a request over
/// its byte limit gets `Ok(over_limit(status))`, the end recorded. (Two
/// closures rather than an enum of outcomes: the response is moved once.)
#[inline]
fn poll_inner<F, T, Er, U>(
    mut state: Pin<&mut State<F>>,
    guard: &mut EndGuard,
    cx: &mut Context<'_>,
    respond: impl FnOnce(Result<T, Er>, &mut EndGuard) -> Result<U, Er>,
    over_limit: impl FnOnce(http::StatusCode) -> U,
) -> Poll<Result<U, Er>>
where
    F: Future<Output = Result<T, Er>>,
{
    let catch = guard.catches_limits();
    let limit = match state.as_mut().project() {
        StateProj::Running { inner } => {
            // The handler is not polled again after an unwind: its future is
            // dropped below.
            let polled = current::with_current(guard.handle(), || {
                catch_limit_unwind(catch, || inner.poll(cx))
            });
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(result)) => {
                    if let Some(limit) = drop_catching_limit(state, State::Done, guard, catch) {
                        // Its destructors went over the limit: so did the
                        // request.
                        drop(result);
                        return Poll::Ready(Ok(over_limit(guard.over_limit(&limit, false))));
                    }
                    if result.is_err() {
                        guard.end(End::HandlerFailed);
                    }
                    return Poll::Ready(respond(result, guard));
                }
                Err(payload) => limit_or_resume(payload, guard),
            }
        }
        StateProj::OverLimit { limit } => *limit,
        StateProj::Done => panic!("arena-tower: ResponseFuture polled after completion"),
    };
    // Drop the handler's future (and the handles it holds) before the
    // end, so the arena goes back as soon as the guard lets go.
    if drop_catching_limit(state, State::Done, guard, catch).is_some() {
        guard.caught_limit();
    }
    Poll::Ready(Ok(over_limit(guard.over_limit(&limit, false))))
}

/// The response the layer answers a request over its byte limit with.
fn over_limit_response<B>(status: http::StatusCode, body: B) -> Response<B> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

impl<F, B, Er> Future for ResponseFuture<F, ResponseEnd>
where
    F: Future<Output = Result<Response<B>, Er>>,
    B: Default,
{
    type Output = Result<Response<B>, Er>;

    // (The one unsafe call here is `current::enter`, whose guard stays a
    // local.)
    #[allow(unsafe_code)]
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        // Without a limit to catch, the inner future's output is ours as it
        // is: returned where it was polled, not moved through `poll_inner`'s
        // closures (a response is a few hundred bytes). Same steps, same
        // order as there: current request, poll, drop the handler's future,
        // then the end. (Keep the two in step.)
        if !this.guard.catches_limits() {
            if let StateProj::Running { inner } = this.state.as_mut().project() {
                // SAFETY: `entered` is a local, dropped right after the
                // poll (or by its unwind), after anything the poll entered.
                let entered = unsafe { current::enter(this.guard.handle()) };
                let polled = inner.poll(cx);
                drop(entered);
                if let Poll::Ready(result) = &polled {
                    let failed = result.is_err();
                    this.state.set(State::Done);
                    if failed {
                        this.guard.end(End::HandlerFailed);
                    }
                    this.guard.responded();
                }
                return polled;
            }
        }
        poll_inner(
            this.state,
            this.guard,
            cx,
            |result, guard| {
                guard.responded();
                result
            },
            |status| over_limit_response(status, B::default()),
        )
    }
}

impl<F, B, Er> Future for ResponseFuture<F, BodyEnd>
where
    F: Future<Output = Result<Response<B>, Er>>,
    B: Body,
{
    type Output = Result<Response<ArenaBody<B>>, Er>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        poll_inner(
            this.state,
            this.guard,
            cx,
            |result, guard| {
                let catch = guard.catches_limits();
                result.map(|response| match guard.take() {
                    Some(handle) => ArenaBody::wrap(response, handle, catch),
                    None => unreachable!("arena-tower: the guard ends only here"),
                })
            },
            |status| over_limit_response(status, ArenaBody::ended()),
        )
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}
