//! `disable_sublist_cache` / `no_sublist_cache`: an operator with many
//! distinct subjects trades a trie walk per publish for the memory of the
//! match cache. As with nats-server 2.9.10, `/subsz` then shows no cached
//! subjects and no cache hits, and a reload cannot change it.

mod support;

use support::{session, Broker, IO_TIMEOUT};

/// Publishes on `a` three times to a subscriber on the same connection
/// (one shard: the matches all happen there), then reads `/subsz`.
fn subsz_after_publishing(broker: &Broker) -> serde_json::Value {
    let mut client = support::RawClient::connect_quiet(broker.addr);
    session(
        &mut client,
        b"SUB a 1\r\nPUB a 1\r\nx\r\nPUB a 1\r\nx\r\nPUB a 1\r\nx\r\n",
        b"MSG a 1 1\r\nx\r\nMSG a 1 1\r\nx\r\nMSG a 1 1\r\nx\r\n",
    );
    broker.monitor_json("/subsz")
}

#[test]
fn with_the_cache_disabled_subsz_shows_no_cache_and_no_hits() {
    for key in ["disable_sublist_cache", "no_sublist_cache"] {
        let broker = Broker::start_with(&["-m", "-1"], Some(&format!("{key}: true\n")));
        let subsz = subsz_after_publishing(&broker);
        assert_eq!(subsz["num_cache"], 0, "{key}: {subsz}");
        assert_eq!(subsz["cache_hit_rate"], 0.0, "{key}: {subsz}");
        assert!(subsz["num_matches"].as_u64().unwrap() >= 3, "{subsz}");
    }
    // The same traffic with the cache: a cached subject and hits.
    let broker = Broker::start_with(&["-m", "-1"], None);
    let subsz = subsz_after_publishing(&broker);
    assert!(subsz["num_cache"].as_u64().unwrap() >= 1, "{subsz}");
    assert!(subsz["cache_hit_rate"].as_f64().unwrap() > 0.0, "{subsz}");
}

#[test]
fn a_reload_cannot_turn_the_cache_back_on() {
    let broker = Broker::with_config("disable_sublist_cache: true\n");
    let line = broker.reload_refused("disable_sublist_cache: false\n", IO_TIMEOUT);
    assert!(
        line.contains("config reload not supported for disable_sublist_cache: old=true, new=false"),
        "{line}"
    );
}
