//! The unpublished workspace package: it owns the top-level examples,
//! tests and benches, and runs the README's and `docs/guide.md`'s code
//! blocks as doctests
//! (they use both `arena-b` and `arena-tower`, which only this package
//! depends on together).

/// `docs/guide.md`'s code blocks, compiled and run as doctests.
#[doc = include_str!("../docs/guide.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
