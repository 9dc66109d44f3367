//! Simulated clients: random programs of SUB, UNSUB (with and without a
//! max), PUB and PING on random subjects, written to the server in random
//! pieces; what they read back is parsed and handed to the model.

use std::collections::VecDeque;

use crate::model::{ClientNo, Model, Step};
use crate::rng::SimRng;
use crate::sim_io::SimSocket;

const TOKENS: [&str; 3] = ["a", "b", "c"];
const QUEUES: [&str; 2] = ["q1", "q2"];

pub struct SimClient {
    pub id: ClientNo,
    pub echo: bool,
    /// Reads rarely and in small pieces.
    pub slow_reader: bool,
    /// Operations left to write in the run phase.
    pub ops_left: u32,
    /// Bytes written, not yet read by the server.
    pub to_server: VecDeque<u8>,
    /// Bytes read from the socket, not yet parsed.
    from_server: Vec<u8>,
    pub socket: SimSocket,
    /// The client closed its end.
    pub gone: bool,
    /// The server closed the connection (EOF seen).
    pub closed_by_server: bool,
    /// Steps at which PINGs were written, oldest first.
    pings_out: VecDeque<Step>,
    live_sids: Vec<u32>,
    /// Sids that got their one UNSUB with a max.
    maxed_sids: Vec<u32>,
    next_sid: u32,
    next_seq: u64,
    pub errors: Vec<String>,
    /// The server's `max_subscriptions` (0: none).
    pub max_subscriptions: usize,
}

impl SimClient {
    pub fn new(id: ClientNo, rng: &mut SimRng, socket: SimSocket) -> SimClient {
        SimClient {
            id,
            echo: rng.below(4) != 0,
            slow_reader: rng.below(5) == 0,
            ops_left: 5 + rng.below(40) as u32,
            to_server: VecDeque::new(),
            from_server: Vec::new(),
            socket,
            gone: false,
            closed_by_server: false,
            pings_out: VecDeque::new(),
            live_sids: Vec::new(),
            maxed_sids: Vec::new(),
            next_sid: 1,
            next_seq: 1,
            errors: Vec::new(),
            max_subscriptions: 0,
        }
    }

    pub fn is_open(&self) -> bool {
        !self.gone && !self.closed_by_server
    }

    pub fn awaiting_pong(&self) -> bool {
        !self.pings_out.is_empty()
    }

    fn write(&mut self, text: &str) {
        self.to_server.extend(text.as_bytes());
    }

    /// `user`: log in as this user (password `pw`), else send no
    /// credentials.
    pub fn write_connect(&mut self, user: Option<&str>) {
        let credentials = user
            .map(|u| format!(",\"user\":\"{u}\",\"pass\":\"pw\""))
            .unwrap_or_default();
        let line = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"echo\":{}{credentials},\"protocol\":1}}\r\n",
            self.echo
        );
        self.write(&line);
    }

    pub fn write_ping(&mut self, now: Step) {
        self.pings_out.push_back(now);
        self.write("PING\r\n");
    }

    /// One random operation of the client's program.
    pub fn write_random_op(&mut self, rng: &mut SimRng, model: &mut Model, now: Step) {
        self.ops_left = self.ops_left.saturating_sub(1);
        match rng.below(20) {
            0..=4 => {
                let subject = random_subject(rng, true);
                let queue = (rng.below(3) == 0).then(|| QUEUES[rng.below(2) as usize]);
                let sid = self.next_sid;
                self.next_sid += 1;
                // Subscriptions the server may still count (a max UNSUB may
                // or may not have removed one yet): at the limit, this SUB
                // may be refused.
                let uncertain =
                    self.max_subscriptions > 0 && self.live_sids.len() >= self.max_subscriptions;
                model.sub_written(self.id, sid, &subject, queue, uncertain, now);
                self.live_sids.push(sid);
                let line = match queue {
                    Some(q) => format!("SUB {subject} {q} {sid}\r\n"),
                    None => format!("SUB {subject} {sid}\r\n"),
                };
                self.write(&line);
            }
            5 | 6 if !self.live_sids.is_empty() => {
                let at = rng.below(self.live_sids.len() as u64) as usize;
                let sid = self.live_sids[at];
                let max = (rng.below(2) == 0 && !self.maxed_sids.contains(&sid))
                    .then(|| 1 + rng.below(4));
                if max.is_some() {
                    self.maxed_sids.push(sid);
                }
                model.unsub_written(self.id, sid, max, now);
                if max.is_none() {
                    self.live_sids.swap_remove(at);
                }
                let line = match max {
                    Some(max) => format!("UNSUB {sid} {max}\r\n"),
                    None => format!("UNSUB {sid}\r\n"),
                };
                self.write(&line);
            }
            7..=9 => self.write_ping(now),
            _ => {
                let subject = random_subject(rng, false);
                let seq = self.next_seq;
                self.next_seq += 1;
                model.pub_written(self.id, seq, &subject, now);
                let payload = format!("{}:{seq}", self.id);
                let line = format!("PUB {subject} {}\r\n{payload}\r\n", payload.len());
                self.write(&line);
            }
        }
    }

    /// Reads up to `max` bytes from the socket and handles complete lines.
    pub fn read(&mut self, max: usize, model: &mut Model, now: Step) -> Result<(), String> {
        {
            let mut socket = self.socket.0.borrow_mut();
            let n = max.min(socket.in_kernel.len());
            self.from_server.extend(socket.in_kernel.drain(..n));
            if socket.shut && socket.in_kernel.is_empty() && !self.gone {
                self.closed_by_server = true;
            }
        }
        self.parse(model, now)
    }

    fn parse(&mut self, model: &mut Model, now: Step) -> Result<(), String> {
        loop {
            let Some(end) = find_crlf(&self.from_server) else {
                return Ok(());
            };
            let line = String::from_utf8_lossy(&self.from_server[..end]).into_owned();
            let mut used = end + 2;
            if let Some(rest) = line.strip_prefix("MSG ") {
                let fields: Vec<&str> = rest.split(' ').collect();
                let (subject, sid, len) = match fields[..] {
                    [subject, sid, len] | [subject, sid, _, len] => (subject, sid, len),
                    _ => return Err(format!("client {}: bad MSG line {line:?}", self.id)),
                };
                let len: usize = len
                    .parse()
                    .map_err(|_| format!("bad MSG length {line:?}"))?;
                if self.from_server.len() < used + len + 2 {
                    return Ok(());
                }
                let payload =
                    String::from_utf8_lossy(&self.from_server[used..used + len]).into_owned();
                if &self.from_server[used + len..used + len + 2] != b"\r\n" {
                    return Err(format!(
                        "client {}: MSG payload not followed by CRLF",
                        self.id
                    ));
                }
                used += len + 2;
                let (publisher, seq) = payload
                    .split_once(':')
                    .and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)))
                    .ok_or_else(|| format!("client {}: bad payload {payload:?}", self.id))?;
                let sid: u32 = sid.parse().map_err(|_| format!("bad sid in {line:?}"))?;
                model.delivered(self.id, sid, subject, publisher, seq)?;
            } else if line == "PONG" {
                let Some(ping_at) = self.pings_out.pop_front() else {
                    return Err(format!("client {}: PONG without a PING", self.id));
                };
                model.pong_read(self.id, ping_at, now);
            } else if line == "PING" {
                if !self.gone {
                    self.write("PONG\r\n");
                }
            } else if line.starts_with("INFO ") || line == "+OK" {
            } else if let Some(text) = line.strip_prefix("-ERR ") {
                self.errors.push(text.to_string());
            } else {
                return Err(format!("client {}: unexpected line {line:?}", self.id));
            }
            self.from_server.drain(..used);
        }
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

/// One to three tokens; subscriptions may use `*` and a final `>`.
fn random_subject(rng: &mut SimRng, wildcards: bool) -> String {
    let depth = 1 + rng.below(3) as usize;
    let mut tokens = Vec::with_capacity(depth);
    for i in 0..depth {
        let token = if wildcards && rng.below(5) == 0 {
            if i + 1 == depth && rng.below(2) == 0 {
                ">"
            } else {
                "*"
            }
        } else {
            TOKENS[rng.below(TOKENS.len() as u64) as usize]
        };
        tokens.push(token);
    }
    tokens.join(".")
}
