//! Is the peer still there? Server PINGs, the stale-connection rule and the
//! round-trip estimate, as nats-server runs them.

use std::time::{Duration, Instant};

/// What the periodic check decided for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingCheck {
    Nothing,
    /// Send a PING now.
    Ping,
    /// `ping_max` PINGs went unanswered: close as stale.
    Stale,
}

#[derive(Debug)]
pub struct Liveness {
    /// Server PINGs not yet answered.
    pings_out: u32,
    next_ping: Instant,
    first_ping_done: bool,
    /// A CONNECT has been read.
    connect_received: bool,
    /// The client published, (un)subscribed or pinged since the last check.
    active: bool,
    ping_sent_at: Option<Instant>,
    /// Round trip of the latest answered server PING (until then, the time
    /// from accept to CONNECT).
    rtt: Option<Duration>,
}

impl Liveness {
    /// Until CONNECT, the first PING is due after the regular interval.
    pub fn new(now: Instant, ping_interval: Duration) -> Liveness {
        Liveness {
            pings_out: 0,
            next_ping: now + ping_interval,
            first_ping_done: false,
            connect_received: false,
            active: false,
            ping_sent_at: None,
            rtt: None,
        }
    }

    /// Traffic from the client proves it alive.
    pub fn heard_from(&mut self) {
        self.active = true;
    }

    /// As nats-server: the RTT is estimated from accept to CONNECT until a
    /// PING is answered, and the first PING is due `first_ping` after
    /// CONNECT.
    pub fn connected(&mut self, now: Instant, accepted: Instant, first_ping: Duration) {
        self.connect_received = true;
        self.active = true;
        self.rtt = Some(now.saturating_duration_since(accepted));
        self.next_ping = now + first_ping;
    }

    /// Whether the client has sent its CONNECT.
    pub fn connect_received(&self) -> bool {
        self.connect_received
    }

    pub fn pong(&mut self, now: Instant) {
        self.pings_out = 0;
        if let Some(sent) = self.ping_sent_at.take() {
            self.rtt = Some(now.saturating_duration_since(sent));
        }
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The periodic check. A client that sent anything since the last
    /// check skips this PING (the first, RTT-measuring PING always goes
    /// out).
    pub fn check(&mut self, now: Instant, interval: Duration, ping_max: u32) -> PingCheck {
        if now < self.next_ping {
            return PingCheck::Nothing;
        }
        self.next_ping = now + interval;
        let was_active = std::mem::replace(&mut self.active, false);
        if self.first_ping_done && was_active {
            return PingCheck::Nothing;
        }
        if self.pings_out + 1 > ping_max {
            return PingCheck::Stale;
        }
        self.pings_out += 1;
        self.first_ping_done = true;
        self.ping_sent_at = Some(now);
        PingCheck::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_active_client_skips_pings_until_it_goes_quiet_then_goes_stale() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(2);
        let mut live = Liveness::new(t0, interval);
        assert_eq!(live.check(t0, interval, 2), PingCheck::Nothing);
        live.connected(t0, t0, Duration::from_secs(1));
        // The first, RTT-measuring PING goes out even though it was active.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(live.check(t1, interval, 2), PingCheck::Ping);
        live.pong(t1 + Duration::from_millis(3));
        assert_eq!(live.rtt(), Some(Duration::from_millis(3)));
        live.heard_from();
        let t2 = t1 + interval;
        assert_eq!(live.check(t2, interval, 2), PingCheck::Nothing);
        assert_eq!(live.check(t2 + interval, interval, 2), PingCheck::Ping);
        assert_eq!(live.check(t2 + interval * 2, interval, 2), PingCheck::Ping);
        assert_eq!(live.check(t2 + interval * 3, interval, 2), PingCheck::Stale);
    }
}
