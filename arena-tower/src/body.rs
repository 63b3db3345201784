//! [`ArenaBody`]: the response body that marks the end of the request.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::handle::RequestArena;
use crate::lease::{End, Lease};

/// Holds a request's handle until it is dropped, and records how the
/// response ended (`end`); dropping it unended records `on_drop`. It is the
/// last field of the body or future that owns it, so it drops after what
/// they wrapped: then it checks whether other handles outlived the
/// response, and lets its own go, which releases the arena when it was the
/// last.
pub(crate) struct EndGuard {
    handle: Option<RequestArena>,
    ended: bool,
    on_drop: End,
}

impl EndGuard {
    pub(crate) fn new(handle: RequestArena, on_drop: End) -> EndGuard {
        EndGuard {
            handle: Some(handle),
            ended: false,
            on_drop,
        }
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
            let owners = lease
                .bytes_owners
                .load(std::sync::atomic::Ordering::Acquire);
            if std::sync::Arc::strong_count(lease) <= 1 + owners {
                self.handle = None;
            }
        }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.end(self.on_drop);
        if let Some(handle) = self.handle.take() {
            Lease::check_outlived(handle.lease());
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

pin_project! {
    /// The response body of an [`ArenaService`](crate::ArenaService): the
    /// inner body `B`, unchanged, plus a handle to the request's arena that
    /// it lets go at the end of the response.
    ///
    /// Frames (data and trailers), errors, [`size_hint`](Body::size_hint)
    /// and [`is_end_stream`](Body::is_end_stream) are forwarded. The end is
    /// the first of: `poll_frame` returns `None` or an error, the inner body
    /// reports `is_end_stream()` after a frame (or before the first one),
    /// or this body is dropped, which is what hyper does when the client
    /// goes away mid-response. The arena itself is released when, in
    /// addition, no [`RequestArena`] handle remains.
    ///
    /// ```
    /// use arena_tower::{ArenaBody, ArenaLayer};
    /// use http::{Request, Response};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = ArenaLayer::new();
    /// let svc = ServiceBuilder::new().layer(layer.clone()).service(service_fn(|_req: Request<()>| async {
    ///     Ok::<_, std::convert::Infallible>(Response::new(Full::new(bytes::Bytes::from_static(b"hi"))))
    /// }));
    /// let response: Response<ArenaBody<Full<bytes::Bytes>>> = svc.oneshot(Request::new(())).await.unwrap();
    /// assert_eq!(layer.pool_stats().in_flight, 1); // the body holds the arena
    /// let bytes = response.into_body().collect().await.unwrap().to_bytes();
    /// assert_eq!(&bytes[..], b"hi");
    /// assert_eq!(layer.pool_stats().in_flight, 0);
    /// # }
    /// ```
    pub struct ArenaBody<B> {
        #[pin]
        inner: B,
        guard: EndGuard,
    }
}

impl<B: Body> ArenaBody<B> {
    pub(crate) fn new(inner: B, handle: RequestArena) -> ArenaBody<B> {
        let mut guard = EndGuard::new(handle, End::BodyDropped);
        if inner.is_end_stream() {
            // An empty body may never be polled: it has ended already.
            guard.end(End::Finished);
        }
        ArenaBody { inner, guard }
    }
}

impl<B> ArenaBody<B> {
    /// The inner body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The inner body, mutably.
    pub fn get_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// The inner body, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut B> {
        self.project().inner
    }

    /// Whether the response has ended from this body's point of view (its
    /// last frame or an error was seen).
    pub fn is_ended(&self) -> bool {
        self.guard.is_ended()
    }
}

impl<B: Body> Body for ArenaBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            None => this.guard.end(End::Finished),
            Some(Err(_)) => this.guard.end(End::BodyError),
            Some(Ok(_)) => {
                if !this.guard.is_ended() && this.inner.is_end_stream() {
                    this.guard.end(End::Finished);
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: fmt::Debug> fmt::Debug for ArenaBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaBody")
            .field("inner", &self.inner)
            .field("ended", &self.guard.is_ended())
            .finish()
    }
}
