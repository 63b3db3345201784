//! Runs every example that needs no network, so none of them can rot
//! (the axum server has its own test, `tests/axum_server.rs`).

mod common;

fn run_example(name: &str, args: &[&str]) -> String {
    run_example_with(name, &[], args)
}

fn run_example_with(name: &str, cargo_args: &[&str], args: &[&str]) -> String {
    let out = common::example(name, cargo_args, args)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn parser_expr() {
    let out = run_example("parser_expr", &["1 + 2 * (3 - 4) / 5"]);
    assert!(out.contains("value:  0.6"), "{out}");
    assert!(out.contains("10,000 terms: value 100010000"), "{out}");
}

#[test]
fn game_loop() {
    let out = run_example("game_loop", &["200"]);
    assert!(out.contains("frames:      200"), "{out}");
    assert!(out.contains("0 bytes in use after the last frame"), "{out}");
}

#[test]
fn string_intern() {
    let out = run_example("string_intern", &[]);
    assert!(out.contains("distinct words:  8"), "{out}");
    assert!(out.contains("100,000 lookups, 1000 distinct"), "{out}");
}

/// The callgrind probe of `scripts/callgrind-hot-path`, a bin of this
/// package (`scripts/tools/hot_path.rs`) rather than an example.
#[test]
fn hot_path() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hot_path"))
        .arg("3")
        .output()
        .expect("hot_path runs");
    assert!(out.status.success(), "{out:?}");
    let out = String::from_utf8(out.stdout).expect("UTF-8 output");
    assert!(out.contains("ran 3 round(s)"), "{out}");
}

#[test]
fn graph_pool() {
    let out = run_example_with("graph_pool", &["--features", "lockfree"], &[]);
    assert!(out.contains("searches:    200"), "{out}");
    assert!(out.contains("hit rate"), "{out}");
}

#[test]
fn v0_5_features() {
    let out = run_example_with("v0_5_features", &["--features", "lockfree,slab"], &[]);
    assert!(out.contains("SyncArena: 4 threads"), "{out}");
    assert!(out.contains("LockFreeAllocator: hit rate 1.00"), "{out}");
    assert!(out.contains("without a new chunk: true"), "{out}");
    assert!(out.contains("reset_and_shrink: 0 bytes allocated"), "{out}");
}

#[test]
fn hyper_service_self_test() {
    let out = run_example("hyper_service", &["--self-test"]);
    assert!(out.contains("self-test passed"), "{out}");
    assert!(
        out.contains("POST /reverse -> 200 OK three two one"),
        "{out}"
    );
}
