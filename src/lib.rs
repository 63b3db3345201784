//! Placeholder library target of the unpublished workspace package.
