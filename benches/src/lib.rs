//! percore-benches: the load generator (`percore-bench`), histogram
//! comparison (`histcmp`), and the reference tools used to calibrate them
//! (`null-server`, `tcp-relay`, `compare-report`).

pub mod client;
pub mod clock;
pub mod creds;
pub mod extra_conns;
pub mod hgrm;
pub mod histcmp;
pub mod hostinfo;
pub mod latency;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod soak;
pub mod stats;
pub mod tls;
