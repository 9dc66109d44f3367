//! `hostile-clients`: many connections that misbehave in one way, for a
//! bounded time, against a NATS server (benches/hostile.sh runs it beside a
//! healthy publisher/subscriber pair and compares servers).
//!
//! Modes (one per run):
//! - `no-connect`: connect, never send anything (not even CONNECT);
//! - `dribble`: CONNECT, then a control line one byte a second that never ends;
//! - `stalled-payload`: CONNECT, then `PUB <subject> <max_payload>` and never
//!   the payload;
//! - `random`: random bytes instead of the protocol; a connection the server
//!   closes is opened again (at most once a second per slot);
//! - `sub-noread`: CONNECT, `SUB >`, never read again;
//! - `churn`: connect, CONNECT + PING, wait for PONG, close; in a loop;
//! - `cpu-hog`: no connections at all, `--conns` threads (at most 16) that
//!   only spin: the control that shows what sharing the CPUs alone does to
//!   the pair's latency, apart from any work the hostile connections cause.
//!
//! Every mode except `sub-noread` drains what the server sends (without
//! answering its PINGs) so that a close is seen. Prints one JSON object.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use percore_benches::client::parse_url;
use percore_benches::extra_conns::ensure_fd_limit;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    NoConnect,
    Dribble,
    StalledPayload,
    Random,
    SubNoread,
    Churn,
    CpuHog,
}

#[derive(Parser, Debug)]
#[command(
    name = "hostile-clients",
    about = "Connections that misbehave, for a bounded time"
)]
struct Args {
    #[arg(value_enum)]
    mode: Mode,
    /// Server URL.
    #[arg(long, short = 's', default_value = "nats://127.0.0.1:4222")]
    server: String,
    /// Connections held at once (churn: looping threads, at most 16).
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// How long to misbehave, in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seed of the random bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"hostile\"}\r\n";
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Counts {
    opened: u64,
    connect_errors: u64,
    closed_by_server: u64,
    bytes_sent: u64,
    cycles: u64,
}

/// One held connection.
struct Slot {
    stream: Option<TcpStream>,
    /// When this slot last (re)connected or sent its dribble byte.
    last: Instant,
    /// Bytes of the dribbled line sent so far.
    dribbled: u64,
}

/// xorshift64*: reproducible garbage without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The server's max_payload from its INFO line (1 MiB if absent).
fn max_payload(addr: &str) -> io::Result<u64> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut info = Vec::new();
    let mut byte = [0u8; 1];
    while !info.ends_with(b"\r\n") && info.len() < 65536 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        info.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&info);
    let json = text.trim_start_matches("INFO ").trim();
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    Ok(value["max_payload"].as_u64().unwrap_or(1 << 20))
}

/// Opens one connection and says what the mode says first.
fn open(
    addr: &str,
    mode: Mode,
    max_payload: u64,
    rng: &mut Rng,
    counts: &mut Counts,
) -> Option<TcpStream> {
    let mut stream = match TcpStream::connect(addr) {
        Ok(stream) => stream,
        Err(_) => {
            counts.connect_errors += 1;
            return None;
        }
    };
    counts.opened += 1;
    let first: Vec<u8> = match mode {
        Mode::NoConnect | Mode::Churn | Mode::CpuHog => Vec::new(),
        Mode::Dribble => CONNECT.to_vec(),
        Mode::StalledPayload => {
            let mut bytes = CONNECT.to_vec();
            bytes.extend_from_slice(format!("PUB hostile.stalled {max_payload}\r\n").as_bytes());
            bytes
        }
        Mode::Random => {
            let mut bytes = vec![0u8; 512];
            rng.fill(&mut bytes);
            bytes
        }
        Mode::SubNoread => {
            let mut bytes = CONNECT.to_vec();
            bytes.extend_from_slice(b"SUB > 1\r\n");
            bytes
        }
    };
    if !first.is_empty() {
        if stream.write_all(&first).is_err() {
            counts.closed_by_server += 1;
            return None;
        }
        counts.bytes_sent += first.len() as u64;
    }
    if mode == Mode::SubNoread {
        // Never read: keep the receive buffer small so the server's
        // backlog for this client grows as soon as possible.
        set_rcvbuf(&stream, 4096);
    }
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

fn set_rcvbuf(stream: &TcpStream, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a socket we own, with a correctly sized value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Reads whatever is there without blocking; `false` when the server closed.
fn drain(stream: &mut TcpStream, scratch: &mut [u8]) -> bool {
    loop {
        match stream.read(scratch) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn held(args: &Args, addr: &str, max_payload: u64) -> Counts {
    let mut counts = Counts::default();
    let mut rng = Rng(args.seed.max(1));
    let started = Instant::now();
    let mut slots: Vec<Slot> = (0..args.conns)
        .map(|_| Slot {
            stream: open(addr, args.mode, max_payload, &mut rng, &mut counts),
            last: Instant::now(),
            dribbled: 0,
        })
        .collect();
    let end = started + Duration::from_secs_f64(args.duration);
    let mut scratch = vec![0u8; 65536];
    while Instant::now() < end {
        let now = Instant::now();
        for slot in &mut slots {
            if let Some(stream) = slot.stream.as_mut() {
                if args.mode == Mode::Dribble
                    && now.duration_since(slot.last) >= Duration::from_secs(1)
                {
                    let byte: &[u8] = if slot.dribbled < 4 {
                        &b"PUB "[slot.dribbled as usize..][..1]
                    } else {
                        b"a"
                    };
                    match stream.write(byte) {
                        Ok(1) => {
                            slot.dribbled += 1;
                            counts.bytes_sent += 1;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => {
                            counts.closed_by_server += 1;
                            slot.stream = None;
                            continue;
                        }
                    }
                    slot.last = now;
                }
                if args.mode != Mode::SubNoread && !drain(stream, &mut scratch) {
                    counts.closed_by_server += 1;
                    slot.stream = None;
                }
            } else if args.mode == Mode::Random
                && now.duration_since(slot.last) >= Duration::from_secs(1)
            {
                slot.stream = open(addr, args.mode, max_payload, &mut rng, &mut counts);
                slot.last = now;
            }
        }
        std::thread::sleep(TICK);
    }
    counts
}

fn churn(args: &Args, addr: &str) -> Counts {
    let threads = args.conns.clamp(1, 16);
    let end = Instant::now() + Duration::from_secs_f64(args.duration);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let addr = addr.to_string();
            std::thread::spawn(move || {
                let mut counts = Counts::default();
                let mut buf = [0u8; 4096];
                while Instant::now() < end {
                    let Ok(mut stream) = TcpStream::connect(&addr) else {
                        counts.connect_errors += 1;
                        continue;
                    };
                    counts.opened += 1;
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut seen = Vec::new();
                    let ok =
                        stream.write_all(CONNECT).is_ok() && stream.write_all(b"PING\r\n").is_ok();
                    while ok && !seen.windows(6).any(|w| w == b"PONG\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                counts.closed_by_server += 1;
                                break;
                            }
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    counts.cycles += 1;
                }
                counts
            })
        })
        .collect();
    let mut total = Counts::default();
    for worker in workers {
        if let Ok(c) = worker.join() {
            total.opened += c.opened;
            total.connect_errors += c.connect_errors;
            total.closed_by_server += c.closed_by_server;
            total.cycles += c.cycles;
        }
    }
    total
}

/// Spins `--conns` threads (at most 16) until the deadline; touches no
/// server. `cycles` counts spin rounds of a million iterations.
fn cpu_hog(args: &Args) -> Counts {
    let end = Instant::now() + Duration::from_secs_f64(args.duration);
    let workers: Vec<_> = (0..args.conns.clamp(1, 16))
        .map(|_| {
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                let mut x = 1u64;
                while Instant::now() < end {
                    for _ in 0..1_000_000 {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let mut total = Counts::default();
    for worker in workers {
        total.cycles += worker.join().unwrap_or(0);
    }
    total
}

fn main() -> ExitCode {
    let args = Args::parse();
    let addr = parse_url(&args.server);
    if let Err(e) = ensure_fd_limit(args.conns as u64 + 64) {
        eprintln!("hostile-clients: {e}");
        return ExitCode::from(2);
    }
    let max_payload = match max_payload(&addr) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("hostile-clients: no server at {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let counts = match args.mode {
        Mode::Churn => churn(&args, &addr),
        Mode::CpuHog => cpu_hog(&args),
        _ => held(&args, &addr, max_payload),
    };
    let mode = Mode::value_variants()
        .iter()
        .find(|m| **m == args.mode)
        .and_then(|m| m.to_possible_value())
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "conns": args.conns,
            "duration_s": args.duration,
            "opened": counts.opened,
            "connect_errors": counts.connect_errors,
            "closed_by_server": counts.closed_by_server,
            "bytes_sent": counts.bytes_sent,
            "cycles": counts.cycles,
        })
    );
    ExitCode::SUCCESS
}
