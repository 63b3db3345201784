//! [`ResponseFuture`]: the response future of [`ArenaService`](crate::ArenaService).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

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

/// Replaces the value in `slot` by `empty`, catching a limit unwind of
/// the old value's destructors (one that allocates past the limit once the
/// first unwind is caught, when nothing unwinds any more): the slot holds
/// `empty` either way, since an assignment writes the new value even when
/// dropping the old one unwinds.
pub(crate) fn drop_catching_limit<T>(
    slot: Pin<&mut T>,
    empty: T,
    guard: &EndGuard,
) -> Option<LimitExceeded> {
    catch_unwind(AssertUnwindSafe(move || {
        let mut slot = slot;
        slot.set(empty)
    }))
    .err()
    .map(|payload| limit_or_resume(payload, guard))
}

/// What the inner future came to.
enum Outcome<T> {
    /// Its output; on an error, the end is recorded already.
    Output(T),
    /// It hit the byte limit: answer with this status (the end is recorded).
    OverLimit(http::StatusCode),
}

/// Polls the inner future of a [`ResponseFuture`] with the request as the
/// thread's current one, catching its limit unwinds.
fn poll_inner<F, T, Er>(
    mut state: Pin<&mut State<F>>,
    guard: &mut EndGuard,
    cx: &mut Context<'_>,
) -> Poll<Outcome<Result<T, Er>>>
where
    F: Future<Output = Result<T, Er>>,
{
    let limit = match state.as_mut().project() {
        StateProj::Running { inner } => {
            // The handler is not polled again after an unwind: its future is
            // dropped below.
            let polled = current::with_current(guard.handle(), || {
                catch_unwind(AssertUnwindSafe(|| inner.poll(cx)))
            });
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(result)) => {
                    if let Some(limit) = drop_catching_limit(state, State::Done, guard) {
                        // Its destructors went over the limit: so did the
                        // request.
                        drop(result);
                        return Poll::Ready(Outcome::OverLimit(guard.over_limit(&limit, false)));
                    }
                    if result.is_err() {
                        guard.end(End::HandlerFailed);
                    }
                    return Poll::Ready(Outcome::Output(result));
                }
                Err(payload) => limit_or_resume(payload, guard),
            }
        }
        StateProj::OverLimit { limit } => *limit,
        StateProj::Done => panic!("arena-tower: ResponseFuture polled after completion"),
    };
    // Drop the handler's future (and the handles it holds) before the
    // end, so the arena goes back as soon as the guard lets go.
    if drop_catching_limit(state, State::Done, guard).is_some() {
        guard.caught_limit();
    }
    Poll::Ready(Outcome::OverLimit(guard.over_limit(&limit, false)))
}

impl<F, B, Er> Future for ResponseFuture<F, ResponseEnd>
where
    F: Future<Output = Result<Response<B>, Er>>,
    B: Default,
{
    type Output = Result<Response<B>, Er>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(poll_inner(this.state, this.guard, cx)) {
            Outcome::Output(result) => {
                this.guard.responded();
                result
            }
            Outcome::OverLimit(status) => {
                let mut response = Response::new(B::default());
                *response.status_mut() = status;
                Ok(response)
            }
        })
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
        Poll::Ready(match ready!(poll_inner(this.state, this.guard, cx)) {
            Outcome::Output(result) => result.map(|response| match this.guard.take() {
                Some(handle) => ArenaBody::wrap(response, handle),
                None => unreachable!("arena-tower: the guard ends only here"),
            }),
            Outcome::OverLimit(status) => {
                let mut response = Response::new(ArenaBody::ended());
                *response.status_mut() = status;
                Ok(response)
            }
        })
    }
}

impl<F, E> fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}
