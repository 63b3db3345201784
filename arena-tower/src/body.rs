//! [`ArenaBody`]: the response body that marks the end of the request.

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::end::{End, EndGuard};
use crate::handle::RequestArena;

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
