//! Compile-fail tests (trybuild): the lifetime and thread-safety claims of
//! the API are checked by the compiler. Regenerate the expected messages
//! with `TRYBUILD=overwrite cargo test -p arena-b --test compile_fail`.

#[test]
#[cfg_attr(miri, ignore = "trybuild runs rustc, which Miri cannot")]
fn lifetimes_and_thread_safety() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
