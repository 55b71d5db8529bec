//! The repository crate's integration tests, one binary: the engine end to end on real files, and
//! garbage collection stopped at every step.

mod engine;
mod gc_crash;
mod windows;
