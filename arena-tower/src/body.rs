//! [`ArenaBody`]: the response body that marks the end of the request.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::end::{End, EndGuard};
use crate::future::{catch_limit_unwind, drop_catching_limit, limit_or_resume};
use crate::handle::RequestArena;

/// The error type of [`ArenaBody`]: the inner body's error, boxed, or an
/// [`arena_b::LimitExceeded`] when the body hit the request's byte limit
/// while it was being sent.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The response body of an [`ArenaService`](crate::ArenaService) made by
    /// [`ArenaLayer::track_body`](crate::ArenaLayer::track_body): the inner
    /// body `B` plus a handle to the request's arena that it lets go at the
    /// end of the response.
    ///
    /// Frames (data and trailers), [`size_hint`](Body::size_hint) and
    /// [`is_end_stream`](Body::is_end_stream) are forwarded; errors are
    /// forwarded boxed ([`BoxError`]). The end is the first of: `poll_frame`
    /// returns `None` or an error; a trailers frame (always the last); the
    /// last of the bytes the response declared (`content-length`, or an
    /// exact `size_hint`), after which hyper stops polling; the inner body
    /// reports `is_end_stream()` after a frame (or before the first one);
    /// or this body is dropped, which is what hyper does when the client
    /// goes away mid-response. The arena itself is released when, in
    /// addition, no [`RequestArena`] handle remains.
    ///
    /// If polling the inner body hits the request's byte limit (a stream
    /// that allocates its chunks in the arena), the body ends with an
    /// [`arena_b::LimitExceeded`] error (hyper then aborts the response:
    /// the client sees an error, never a silently truncated body) and a
    /// `WARN` in the request's span.
    ///
    /// ```
    /// use arena_tower::{ArenaBody, ArenaLayer};
    /// use http::{Request, Response};
    /// use http_body_util::{BodyExt, Full};
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = ArenaLayer::new().track_body();
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
        kind: Kind<B>,
        // Data bytes still to come, when the response declared its length.
        remaining: Option<u64>,
        guard: EndGuard,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        // A response the layer made itself (over the limit), or a body
        // that ended with the limit.
        Empty,
    }
}

impl<B: Body> ArenaBody<B> {
    /// Wraps the body of `response`, which belongs to the request of
    /// `handle`; `catch`: its arena can unwind with its limit
    /// ([`EndGuard::catches_limits`]).
    pub(crate) fn wrap(
        response: Response<B>,
        handle: RequestArena,
        catch: bool,
    ) -> Response<ArenaBody<B>> {
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        response.map(|body| {
            let remaining = declared.or_else(|| body.size_hint().exact());
            let mut guard = EndGuard::new(handle, End::BodyDropped, catch);
            if body.is_end_stream() || remaining == Some(0) {
                // An empty body may never be polled: it has ended already.
                guard.end(End::Finished);
            }
            ArenaBody {
                kind: Kind::Inner { body },
                remaining,
                guard,
            }
        })
    }
}

impl<B> ArenaBody<B> {
    /// The empty body of a response the layer made itself.
    pub(crate) fn ended() -> ArenaBody<B> {
        ArenaBody {
            kind: Kind::Empty,
            remaining: Some(0),
            guard: EndGuard::ended(),
        }
    }

    /// The inner body; `None` for a response the layer answered itself
    /// (over the byte limit) or a body that ended at the limit.
    pub fn get_ref(&self) -> Option<&B> {
        match &self.kind {
            Kind::Inner { body } => Some(body),
            Kind::Empty => None,
        }
    }

    /// The inner body, mutably; see [`get_ref`](Self::get_ref).
    pub fn get_mut(&mut self) -> Option<&mut B> {
        match &mut self.kind {
            Kind::Inner { body } => Some(body),
            Kind::Empty => None,
        }
    }

    /// The inner body, pinned; see [`get_ref`](Self::get_ref).
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Option<Pin<&mut B>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => Some(body),
            KindProj::Empty => None,
        }
    }

    /// Whether the response has ended from this body's point of view (its
    /// last frame or an error was seen).
    pub fn is_ended(&self) -> bool {
        self.guard.is_ended()
    }
}

impl<B> Body for ArenaBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let KindProj::Inner { mut body } = this.kind.as_mut().project() else {
            return Poll::Ready(None);
        };
        // A stream that allocates its chunks in the arena can hit the
        // limit here, inside hyper, out of reach of any `CatchPanicLayer`.
        let catch = this.guard.catches_limits();
        let frame = match catch_limit_unwind(catch, || body.as_mut().poll_frame(cx)) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(frame)) => frame,
            Err(payload) => {
                let limit = limit_or_resume(payload, this.guard);
                // The inner body is not polled again; drop it (and its handles).
                if drop_catching_limit(this.kind.as_mut(), Kind::Empty, this.guard, catch).is_some()
                {
                    this.guard.caught_limit();
                }
                this.guard.over_limit(&limit, true);
                return Poll::Ready(Some(Err(Box::new(limit))));
            }
        };
        if frame.is_none() && this.guard.limit_hit_out_of_reach() {
            // A limit unwind the layer never saw (a task the handler spawned
            // fed this body, say): the stream only looks complete.
            this.kind.set(Kind::Empty);
            this.guard.end(End::OverLimit);
            return Poll::Ready(Some(Err(Box::new(LimitOutOfReach))));
        }
        match &frame {
            None => this.guard.end(End::Finished),
            Some(Err(_)) => this.guard.end(End::BodyError),
            Some(Ok(frame)) if !this.guard.is_ended() => {
                let declared_end = match (frame.data_ref(), this.remaining.as_mut()) {
                    (Some(data), Some(remaining)) => {
                        *remaining = remaining.saturating_sub(data.remaining() as u64);
                        *remaining == 0
                    }
                    _ => false,
                };
                if frame.is_trailers() || declared_end || body.is_end_stream() {
                    this.guard.end(End::Finished);
                }
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame.map(|result| result.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Empty => SizeHint::with_exact(0),
        }
    }
}

/// The error a body ends with when its request's arena hit the byte limit
/// out of the layer's reach (in a task the handler spawned, say), so that
/// a stream the failure cut short does not look complete.
#[derive(Debug)]
struct LimitOutOfReach;

impl fmt::Display for LimitOutOfReach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "arena-tower: the request's arena hit max_request_bytes out of the layer's reach \
             (a spawned task or a destructor); the body ends with an error instead of looking \
             complete",
        )
    }
}

impl std::error::Error for LimitOutOfReach {}

impl<B: fmt::Debug> fmt::Debug for ArenaBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArenaBody")
            .field("inner", &self.get_ref())
            .field("ended", &self.guard.is_ended())
            .finish()
    }
}
