//! The repository crate's integration tests, one binary: the engine end to end on real files, and
//! garbage collection stopped at every step, disk layouts against the OS's own tools.

mod engine;
mod gc_crash;
mod image_changes;
mod image_layout;
mod image_points;
mod portable;
mod prove;
mod windows;
