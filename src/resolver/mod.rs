//! Account resolvers of operator mode that need the runtime: the `full`
//! directory resolver's requests over the system account
//! (`claims_update`), the URL resolver (`url`, over the small blocking
//! HTTP client `http_get`) and the account JWT update notices it follows
//! (`claims_notice`). The `MEMORY` resolver needs none of this: its
//! accounts come with the config.

pub mod claims_notice;
pub mod claims_update;
pub mod http_get;
pub mod url;
