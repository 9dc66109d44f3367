//! The server's keepalive PINGs, answered and hidden for the raw clients.
//!
//! The server (as nats-server) sends its first keepalive `PING\r\n` about
//! 2 s after CONNECT, then one every `ping_interval`. A test that reads
//! "the next line" or compares exact bytes sees it whenever the machine is
//! slow enough, so every raw client passes what it reads through
//! [`ServerPings`], which takes those lines out and answers each with a
//! PONG. Tests about keepalive itself keep them
//! ([`ServerPings::keep`], `RawClient::keep_server_pings`).
//!
//! Only protocol lines are looked at: the payload of a message (its size
//! is the header's last field) passes untouched even when it holds
//! `PING\r\n`. A PONG is written only where what the client itself sent
//! ends between two frames (a test that sent half a PUB must not find
//! `PONG\r\n` in its payload), and only once the client has sent CONNECT
//! (before it, a PONG to a server with auth is an authorization
//! violation); until then it is owed, and the PING is still hidden.

/// A server-initiated keepalive PING, as a whole line.
pub const SERVER_PING: &[u8] = b"PING\r\n";

const PONG: &[u8] = b"PONG\r\n";

/// Where a byte stream of NATS protocol frames stands.
#[derive(Default)]
struct Frames {
    /// The control line read so far (not yet ended by `\n`).
    line: Vec<u8>,
    /// Payload bytes (with their CRLF) still to come after a message header.
    payload_left: usize,
}

impl Frames {
    fn between_frames(&self) -> bool {
        self.line.is_empty() && self.payload_left == 0
    }

    /// Passes the payload bytes at the start of `bytes` (as many as the
    /// last header announced); returns how many.
    fn take_payload(&mut self, bytes: &[u8]) -> usize {
        let n = self.payload_left.min(bytes.len());
        self.payload_left -= n;
        n
    }

    /// Ends the current line: a message header announces its payload.
    fn end_line(&mut self) {
        self.payload_left = payload_after(&self.line);
        self.line.clear();
    }
}

/// The payload bytes (CRLF included) that follow `line` when it is a
/// message header (PUB, HPUB, MSG, HMSG, RMSG, HRMSG, LMSG: the size is the
/// last field, the total size for the header forms); 0 for other lines.
fn payload_after(line: &[u8]) -> usize {
    let text = String::from_utf8_lossy(line);
    let mut fields = text.split_ascii_whitespace();
    let op = fields.next().unwrap_or_default().to_ascii_uppercase();
    if !matches!(
        op.as_str(),
        "PUB" | "HPUB" | "MSG" | "HMSG" | "RMSG" | "HRMSG" | "LMSG"
    ) {
        return 0;
    }
    fields
        .last()
        .and_then(|size| size.parse::<usize>().ok())
        .map_or(0, |size| size.saturating_add(2))
}

/// One connection's filter: what the server sent goes in through
/// [`ServerPings::received`], what the client sends is shown to
/// [`ServerPings::sent`], and [`ServerPings::answer`] writes the PONGs
/// due.
#[derive(Default)]
pub struct ServerPings {
    /// Server PINGs pass through to the test (keepalive tests).
    keep: bool,
    incoming: Frames,
    /// How much of `incoming.line` went out already: a line is held back
    /// while it may still turn out to be `PING\r\n`.
    passed: usize,
    outgoing: Frames,
    /// The client has sent CONNECT.
    connected: bool,
    /// PINGs hidden and not yet answered.
    owed: usize,
}

impl ServerPings {
    /// Lets server PINGs through to the test (`true`), or hides and answers
    /// them (`false`, the default). Bytes held back go to `out`.
    pub fn keep(&mut self, keep: bool, out: &mut Vec<u8>) {
        self.keep = keep;
        if keep {
            self.flush(out);
        }
    }

    /// Appends `bytes` read from the server to `out`, less server PINGs
    /// (unless kept). A line that may still become a PING stays held
    /// until it is whole or something else.
    pub fn received(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while !bytes.is_empty() {
            let payload = self.incoming.take_payload(bytes);
            if payload > 0 {
                out.extend_from_slice(&bytes[..payload]);
                bytes = &bytes[payload..];
                continue;
            }
            let byte = bytes[0];
            bytes = &bytes[1..];
            self.incoming.line.push(byte);
            if !self.keep && self.incoming.line == SERVER_PING {
                self.incoming.line.clear();
                self.passed = 0;
                self.owed += 1;
                continue;
            }
            if self.keep || !SERVER_PING.starts_with(&self.incoming.line) {
                self.flush(out);
            }
            if byte == b'\n' {
                self.incoming.end_line();
                self.passed = 0;
            }
        }
    }

    /// The server closed: whatever was held back goes to `out`.
    pub fn closed(&mut self, out: &mut Vec<u8>) {
        self.flush(out);
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.incoming.line[self.passed..]);
        self.passed = self.incoming.line.len();
    }

    /// Follows what the client sent, to know where its frames end and
    /// whether it sent CONNECT.
    pub fn sent(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let payload = self.outgoing.take_payload(bytes);
            if payload > 0 {
                bytes = &bytes[payload..];
                continue;
            }
            let end = bytes.iter().position(|&b| b == b'\n');
            let take = end.map_or(bytes.len(), |at| at + 1);
            self.outgoing.line.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if end.is_some() {
                let line = &self.outgoing.line;
                if line.len() >= 7 && line[..7].eq_ignore_ascii_case(b"CONNECT") {
                    self.connected = true;
                }
                self.outgoing.end_line();
            }
        }
    }

    /// How many PONGs to write now (each `PONG\r\n`): those owed, once the
    /// client has sent CONNECT and its own output is between frames.
    pub fn pongs_due(&mut self) -> usize {
        if self.connected && self.outgoing.between_frames() {
            std::mem::take(&mut self.owed)
        } else {
            0
        }
    }

    /// Writes the PONGs due now (see [`ServerPings::pongs_due`]) to the
    /// server. A failed write is left to the client's next read to notice.
    pub fn answer(&mut self, server: &mut impl std::io::Write) {
        let due = self.pongs_due();
        if due > 0 {
            let _ = server
                .write_all(&PONG.repeat(due))
                .and_then(|()| server.flush());
        }
    }
}
