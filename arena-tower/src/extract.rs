//! [`RequestArena`] as an axum extractor (feature `axum`, on by default).

use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::handle::RequestArena;

/// The extractor takes the handle that [`ArenaLayer`](crate::ArenaLayer)
/// put into the request's extensions; without the layer it rejects the
/// request with [`MissingArenaLayer`] (a 500). `Option<RequestArena>`
/// never rejects.
///
/// ```no_run
/// use arena_tower::{ArenaLayer, RequestArena};
/// use axum::{routing::post, Json, Router};
///
/// async fn sum(arena: RequestArena, Json(numbers): Json<Vec<i64>>) -> String {
///     let copy = arena.alloc_slice_fast(&numbers);
///     copy.sort_unstable();
///     format!("sum {} median {}", copy.iter().sum::<i64>(), copy.get(copy.len() / 2).unwrap_or(&0))
/// }
///
/// let app: Router = Router::new().route("/sum", post(sum)).layer(ArenaLayer::new());
/// ```
impl<S: Send + Sync> FromRequestParts<S> for RequestArena {
    type Rejection = MissingArenaLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestArena>()
            .cloned()
            .ok_or(MissingArenaLayer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestArena {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<RequestArena>().cloned())
    }
}

/// Rejection of the [`RequestArena`] extractor when the request did not
/// pass through an [`ArenaLayer`](crate::ArenaLayer): a `500 Internal
/// Server Error` whose body says to add the layer, since this is a bug in
/// the server's setup, not in the request.
///
/// ```
/// use arena_tower::MissingArenaLayer;
/// use axum::response::IntoResponse;
///
/// let response = MissingArenaLayer.into_response();
/// assert_eq!(response.status(), 500);
/// assert!(MissingArenaLayer.to_string().contains("ArenaLayer"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MissingArenaLayer;

impl MissingArenaLayer {
    const MESSAGE: &'static str = "RequestArena extractor used without ArenaLayer: add \
                                   `.layer(arena_tower::ArenaLayer::new())` to the router or service";
}

impl fmt::Display for MissingArenaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::MESSAGE)
    }
}

impl std::error::Error for MissingArenaLayer {}

impl IntoResponse for MissingArenaLayer {
    fn into_response(self) -> Response {
        tracing::error!(target: "arena_tower", "{}", Self::MESSAGE);
        (StatusCode::INTERNAL_SERVER_ERROR, Self::MESSAGE).into_response()
    }
}
