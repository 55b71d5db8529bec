//! The tenant crate's integration tests, one binary: golden bytes of every frozen format, the
//! run registry on real jobs, and the rotating log file.

mod golden;
mod live;
mod logging;
