//! [`ResponseFuture`]: the response future of [`ArenaService`](crate::ArenaService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

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
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: EndGuard,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, guard: EndGuard) -> ResponseFuture<F> {
        ResponseFuture { inner, guard }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ArenaBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match ready!(this.inner.poll(cx)) {
            Ok(response) => match this.guard.take() {
                Some(handle) => Poll::Ready(Ok(response.map(|body| ArenaBody::new(body, handle)))),
                None => panic!("arena-tower: ResponseFuture polled after completion"),
            },
            Err(e) => {
                this.guard.end(End::HandlerFailed);
                Poll::Ready(Err(e))
            }
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}
