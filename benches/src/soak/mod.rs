//! Soak (issue 15): a fixed-rate healthy pair plus connection churn for a
//! long time, one row per interval (`run`), and what `soak-report` makes of
//! the rows and the server's RSS samples afterwards (`summary`, `plot`).

pub mod churn;
pub mod pair;
pub mod plot;
pub mod row;
pub mod run;
pub mod summary;
