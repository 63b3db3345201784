//! [`ResponseFuture`]: the response future of [`ArenaService`](crate::ArenaService).

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use arena_b::LimitExceeded;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use crate::body::ArenaBody;
use crate::end::{End, EndGuard};

pin_project! {
    /// The future returned by [`ArenaService::call`](tower_service::Service::call):
    /// the inner service's future, whose response body is wrapped in an
    /// [`ArenaBody`] that holds the request's arena until the response ends.
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
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        guard: EndGuard,
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

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, guard: EndGuard) -> ResponseFuture<F> {
        ResponseFuture {
            state: State::Running { inner },
            guard,
        }
    }

    pub(crate) fn over_limit(limit: LimitExceeded, guard: EndGuard) -> ResponseFuture<F> {
        ResponseFuture {
            state: State::OverLimit { limit },
            guard,
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

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ArenaBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limit = match this.state.as_mut().project() {
            StateProj::Running { inner } => {
                // The handler is not polled again after an unwind: its future
                // is dropped below.
                match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => {
                        this.state.set(State::Done);
                        return Poll::Ready(match result {
                            Ok(response) => match this.guard.take() {
                                Some(handle) => Ok(ArenaBody::wrap(response, handle)),
                                None => unreachable!("arena-tower: the guard ends only here"),
                            },
                            Err(e) => {
                                this.guard.end(End::HandlerFailed);
                                Err(e)
                            }
                        });
                    }
                    Err(payload) => limit_or_resume(payload, this.guard),
                }
            }
            StateProj::OverLimit { limit } => *limit,
            StateProj::Done => panic!("arena-tower: ResponseFuture polled after completion"),
        };
        // Drop the handler's future (and the handles it holds) before the
        // end, so the arena goes back as soon as the guard lets go.
        this.state.set(State::Done);
        let status = this.guard.over_limit(&limit, false);
        let mut response = Response::new(ArenaBody::ended());
        *response.status_mut() = status;
        Poll::Ready(Ok(response))
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}
