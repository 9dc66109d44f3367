//! From a parsed request to a response: base path, endpoint table,
//! `http_req_stats`, the snapshot request each endpoint needs, JSONP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::connz::{self, ConnzOptions, SubsMode};
use super::http::{self, Request, Response};
use super::process::{self, CpuSampler};
use super::snapshot::{MonitorSnapshot, SnapshotRequest};
use super::subsz::{self, SubszOptions};
use super::{accountz, accstatz, metrics, params, routez, unclustered, varz, SnapshotSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Root,
    Varz,
    Connz,
    Subsz,
    Routez,
    Gatewayz,
    Leafz,
    Accountz,
    Accstatz,
    Healthz,
    /// Prometheus text (percore's own; nats-server has no such endpoint).
    Metrics,
}

impl Endpoint {
    /// The endpoint for `path` once the base path is removed (`/subscriptionsz`
    /// is `/subsz`). Exact match, as nats-server: `/varz/` is unknown.
    fn of(relative: &str) -> Option<Endpoint> {
        Some(match relative {
            "" | "/" => Endpoint::Root,
            "/varz" => Endpoint::Varz,
            "/connz" => Endpoint::Connz,
            "/subsz" | "/subscriptionsz" => Endpoint::Subsz,
            "/routez" => Endpoint::Routez,
            "/gatewayz" => Endpoint::Gatewayz,
            "/leafz" => Endpoint::Leafz,
            "/accountz" => Endpoint::Accountz,
            "/accstatz" => Endpoint::Accstatz,
            "/healthz" => Endpoint::Healthz,
            "/metrics" => Endpoint::Metrics,
            _ => return None,
        })
    }

    /// The `http_req_stats` key: nats-server counts by endpoint, without
    /// the base path, aliases counted under their main name.
    fn stats_key(self) -> &'static str {
        match self {
            Endpoint::Root => "/",
            Endpoint::Varz => "/varz",
            Endpoint::Connz => "/connz",
            Endpoint::Subsz => "/subsz",
            Endpoint::Routez => "/routez",
            Endpoint::Gatewayz => "/gatewayz",
            Endpoint::Leafz => "/leafz",
            Endpoint::Accountz => "/accountz",
            Endpoint::Accstatz => "/accstatz",
            Endpoint::Healthz => "/healthz",
            Endpoint::Metrics => "/metrics",
        }
    }
}

/// `http_base_path` as a prefix: `""` for none, else `/x` without a
/// trailing slash.
pub fn normalise_base_path(configured: &str) -> String {
    let trimmed = configured.trim_end_matches('/');
    if trimmed.is_empty() || trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// The endpoint `path` names under `base` (normalised), if any.
pub fn route(path: &str, base: &str) -> Option<Endpoint> {
    Endpoint::of(path.strip_prefix(base)?)
}

/// What every connection thread shares.
pub struct Router {
    source: Arc<dyn SnapshotSource>,
    /// `http_base_path`, normalised (see [`normalise_base_path`]).
    base_path: String,
    req_stats: Mutex<BTreeMap<String, u64>>,
    cpu: Mutex<CpuSampler>,
}

const NOT_ANSWERED: &str = "shards did not answer";

impl Router {
    pub fn new(source: Arc<dyn SnapshotSource>, base_path: &str) -> Router {
        Router {
            source,
            base_path: normalise_base_path(base_path),
            req_stats: Mutex::new(BTreeMap::new()),
            cpu: Mutex::new(CpuSampler::default()),
        }
    }

    fn snapshot(&self, request: SnapshotRequest) -> Option<MonitorSnapshot> {
        self.source.snapshot(request)
    }

    /// The counts so far, counting nothing.
    fn counts(&self) -> BTreeMap<String, u64> {
        self.req_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self, endpoint: Endpoint) -> BTreeMap<String, u64> {
        // A poisoned lock only means another request panicked mid-count;
        // the map itself is still usable.
        let mut stats = self
            .req_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *stats.entry(endpoint.stats_key().to_string()).or_insert(0) += 1;
        stats.clone()
    }

    /// `endpoint`'s body for `query`, as the HTTP endpoint serves it (the
    /// system account's requests); not counted in `http_req_stats`.
    pub(super) fn render_for_system(
        &self,
        endpoint: Endpoint,
        query: &http::Query,
    ) -> Result<Option<String>, String> {
        let stats = self.counts();
        self.render(endpoint, query, &stats, "")
    }

    /// Any method is served like GET, as nats-server's handlers do; the
    /// caller leaves the body out for HEAD.
    pub fn handle(&self, request: &Request) -> Response {
        let base = self.base_path.as_str();
        let Some(endpoint) = route(&request.path, base) else {
            return Response::text(404, "404 page not found\n");
        };
        // `/varz` `http_req_stats` lists nats-server's endpoints only.
        let stats = if endpoint == Endpoint::Metrics {
            self.counts()
        } else {
            self.count(endpoint)
        };
        let body = match self.render(endpoint, &request.query, &stats, base) {
            Ok(Some(body)) => body,
            Ok(None) => return Response::text(503, NOT_ANSWERED),
            Err(message) => return Response::text(400, message),
        };
        match endpoint {
            Endpoint::Root => Response::new(200, http::HTML, body),
            Endpoint::Metrics => Response::new(200, metrics::CONTENT_TYPE, body),
            _ => match request.query.get("callback") {
                Some(callback) => {
                    Response::new(200, http::JAVASCRIPT, format!("{callback}({body})"))
                }
                None => Response::new(200, http::JSON, body),
            },
        }
    }

    /// The body; `Ok(None)` when the shards did not answer, `Err` a 400 text.
    fn render(
        &self,
        endpoint: Endpoint,
        query: &http::Query,
        stats: &BTreeMap<String, u64>,
        base: &str,
    ) -> Result<Option<String>, String> {
        Ok(match endpoint {
            Endpoint::Root => Some(unclustered::index_page(base)),
            Endpoint::Healthz => Some("{\"status\":\"ok\"}".to_string()),
            Endpoint::Varz => self
                .snapshot(SnapshotRequest {
                    with_routes: true,
                    ..SnapshotRequest::default()
                })
                .map(|mut snapshot| {
                    // The caller leaves these 0: they are the monitor's to measure.
                    snapshot.server.mem = process::resident_bytes();
                    snapshot.server.cpu = self
                        .cpu
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .sample();
                    varz::render(&snapshot, stats)
                }),
            Endpoint::Connz => {
                let options = ConnzOptions::parse(query)?;
                self.snapshot(options.snapshot_request())
                    .map(|snapshot| connz::render(&snapshot, &options))
            }
            Endpoint::Subsz => {
                let options = SubszOptions::parse(query)?;
                self.snapshot(SnapshotRequest {
                    with_subscriptions: options.subs,
                    ..SnapshotRequest::default()
                })
                .map(|snapshot| subsz::render(&snapshot, &options))
            }
            Endpoint::Routez => {
                let subs = SubsMode::parse(query)?;
                self.snapshot(SnapshotRequest {
                    with_routes: true,
                    with_route_subs: subs != SubsMode::None,
                    ..SnapshotRequest::default()
                })
                .map(|s| routez::render(&s, subs))
            }
            Endpoint::Gatewayz => self
                .snapshot(SnapshotRequest::default())
                .map(|s| unclustered::gatewayz(&s)),
            Endpoint::Leafz => self
                .snapshot(SnapshotRequest::default())
                .map(|s| unclustered::leafz(&s)),
            Endpoint::Metrics => self
                .snapshot(SnapshotRequest::default())
                .map(|mut snapshot| {
                    snapshot.server.mem = process::resident_bytes();
                    metrics::render(&snapshot, stats)
                }),
            Endpoint::Accstatz => {
                let unused = params::boolean(query, "unused")?;
                self.snapshot(SnapshotRequest {
                    with_connections: true,
                    ..SnapshotRequest::default()
                })
                .map(|snapshot| accstatz::render(&snapshot, unused))
            }
            Endpoint::Accountz => match self.snapshot(SnapshotRequest::default()) {
                Some(snapshot) => Some(accountz::render(&snapshot, query.get("acc"))?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_routing() {
        assert_eq!(normalise_base_path(""), "");
        assert_eq!(normalise_base_path("/"), "");
        assert_eq!(normalise_base_path("/nats/"), "/nats");
        assert_eq!(normalise_base_path("nats"), "/nats");
        assert_eq!(route("/varz", ""), Some(Endpoint::Varz));
        assert_eq!(route("/", ""), Some(Endpoint::Root));
        assert_eq!(route("/varz/", ""), None);
        assert_eq!(route("/VARZ", ""), None);
        assert_eq!(route("/subscriptionsz", ""), Some(Endpoint::Subsz));
        assert_eq!(route("/nats/connz", "/nats"), Some(Endpoint::Connz));
        assert_eq!(route("/nats", "/nats"), Some(Endpoint::Root));
        assert_eq!(route("/nats/", "/nats"), Some(Endpoint::Root));
        assert_eq!(route("/connz", "/nats"), None);
        assert_eq!(route("/natsvarz", "/nats"), None);
        assert_eq!(Endpoint::Subsz.stats_key(), "/subsz");
    }
}
