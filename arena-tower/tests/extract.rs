//! The extractor's answer when no `ArenaLayer` wraps the route, in a
//! process of its own (the rejection's wording and its log rate are
//! process-wide).
#![cfg(feature = "axum")]

mod common;

use arena_tower::{ArenaLayer, RequestArena};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::Capture;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn rejection(app: &Router) -> (StatusCode, String) {
    let response = app
        .clone()
        .oneshot(
            http::Request::get("/")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn handler(_arena: RequestArena) -> &'static str {
    "unreachable"
}

/// Review finding: with `Router::new().layer(ArenaLayer::new()).route(..)`
/// the 500 said to add the layer, which the user had (axum applies `layer`
/// only to the routes added before it), and every such request logged an
/// ERROR, so any client could flood the log.
#[test]
fn the_rejection_says_where_the_layer_goes_and_is_logged_at_a_rate() {
    let capture = Capture::default();
    let _guard = tracing::dispatcher::set_default(&capture.dispatch());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        // No layer anywhere in the process yet: add one.
        let app: Router = Router::new().route("/", get(handler));
        let (status, text) = rejection(&app).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            text.contains("add `.layer(arena_tower::ArenaLayer::new())`"),
            "{text}"
        );

        // The layer exists, before the route: say where it goes.
        let app: Router = Router::new()
            .layer(ArenaLayer::new())
            .route("/", get(handler));
        for _ in 0..100 {
            let (status, text) = rejection(&app).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(text.contains("after the `.route(..)` calls"), "{text}");
        }
    });
    let errors: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.target == "arena_tower" && e.level == tracing::Level::ERROR)
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "logged once a minute, not per request: {errors:?}"
    );
    assert_eq!(errors[0].field("rejections"), Some("1"));
}
