//! percore-benches: the load generator (`percore-bench`), histogram
//! comparison (`histcmp`), and the reference tools used to calibrate them
//! (`null-server`, `tcp-relay`, `compare-report`).

pub mod client;
pub mod clock;
pub mod hgrm;
pub mod hostinfo;
pub mod latency;
pub mod report;
pub mod scenario;
pub mod stats;
