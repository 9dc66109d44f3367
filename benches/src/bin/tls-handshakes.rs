//! `tls-handshakes`: new TLS connections per second a server completes.
//! Each of `--threads` threads connects, reads INFO, runs the TLS handshake,
//! sends CONNECT + PING, waits for the PONG and closes, in a loop, for
//! `--duration`. Prints one JSON line: {"handshakes":N,"seconds":S,"per_sec":R,"errors":E}.
//! With `--rate R`, the threads together start at most R handshakes per
//! second (background load while another tool measures latency).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use percore_benches::client::Conn;

#[derive(Parser, Debug)]
#[command(
    name = "tls-handshakes",
    about = "TLS handshakes per second against a NATS server"
)]
struct Args {
    #[arg(long, short = 's', default_value = "nats://127.0.0.1:4222")]
    server: String,
    /// CA certificate(s) the server's certificate chains to (PEM).
    #[arg(long)]
    tls_ca: PathBuf,
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Handshakes per second in all (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = percore_benches::tls::enable(&args.tls_ca) {
        eprintln!("tls-handshakes: {e}");
        return ExitCode::from(2);
    }
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads = args.threads.max(1);
    // Each thread's own schedule: one handshake every `period`.
    let period = (args.rate > 0.0).then(|| Duration::from_secs_f64(threads as f64 / args.rate));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, errors, stop, server) = (
                done.clone(),
                errors.clone(),
                stop.clone(),
                args.server.clone(),
            );
            std::thread::spawn(move || {
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(period) = period {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                        next += period;
                    }
                    match Conn::connect(&server) {
                        Ok(conn) => {
                            conn.shutdown();
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.duration.max(0.1)));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let seconds = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "{{\"handshakes\":{n},\"seconds\":{seconds:.3},\"per_sec\":{:.1},\"errors\":{}}}",
        n as f64 / seconds,
        errors.load(Ordering::Relaxed)
    );
    if n == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
