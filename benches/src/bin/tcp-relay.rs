//! `tcp-relay`: the plain-TCP ceiling for the large-message pub/sub case.
//!
//! `tcp-relay serve -p PORT` is a second process that accepts connections in
//! pairs (first = sink, second = source) and copies source to sink. `tcp-relay
//! run` connects a sink and a source, pushes `--size` byte chunks through the
//! relay for `--duration` and reports bytes/s: publisher -> server -> subscriber
//! with the server doing nothing but forwarding bytes, the most any broker
//! can move between two connections on this box.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tcp-relay",
    about = "Plain TCP relay between two connections (ceiling for pub/sub bytes/s)"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Relay process: copy each pair's second connection into its first.
    Serve {
        #[arg(short = 'a', long, default_value = "127.0.0.1")]
        addr: String,
        #[arg(short = 'p', long, default_value_t = 4444)]
        port: u16,
    },
    /// Client: measure bytes/s through a running relay.
    Run {
        #[arg(long, default_value = "127.0.0.1:4444")]
        server: String,
        /// Bytes per write (the message size being compared).
        #[arg(long, default_value_t = 8192)]
        size: usize,
        /// Seconds to measure.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
    },
}

fn main() -> io::Result<()> {
    match Args::parse().cmd {
        Cmd::Serve { addr, port } => serve(&addr, port),
        Cmd::Run {
            server,
            size,
            duration,
        } => run(&server, size, duration),
    }
}

fn serve(addr: &str, port: u16) -> io::Result<()> {
    let listener = TcpListener::bind((addr, port))?;
    eprintln!("tcp-relay listening on {addr}:{port}");
    let mut pending: Option<TcpStream> = None;
    for s in listener.incoming() {
        let s = s?;
        s.set_nodelay(true)?;
        match pending.take() {
            None => pending = Some(s),
            Some(mut sink) => {
                let mut source = s;
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match source.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if sink.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
    }
    Ok(())
}

fn run(server: &str, size: usize, duration: f64) -> io::Result<()> {
    let mut sink = TcpStream::connect(server)?;
    let mut source = TcpStream::connect(server)?;
    source.set_nodelay(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        // Batch like the bench publisher does: up to 64 KiB per write.
        let per = (64 * 1024 / size.max(1)).max(1);
        let chunk = vec![0u8; size * per];
        while !stop2.load(Ordering::Relaxed) {
            if source.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 256 * 1024];
    let warm = Instant::now();
    // Half a second of warm-up, then measure.
    while warm.elapsed() < Duration::from_millis(500) {
        if sink.read(&mut buf)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "relay closed"));
        }
    }
    let t = Instant::now();
    let mut bytes: u64 = 0;
    while t.elapsed().as_secs_f64() < duration {
        let n = sink.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(sink);
    let _ = writer.join();
    let bps = bytes as f64 / secs;
    println!(
        "tcp-relay: {:.1} MiB/s through the relay = {:.0} msgs/s of {size} B (payload only)",
        bps / (1024.0 * 1024.0),
        bps / size as f64
    );
    println!(
        "{{\"relay_bytes_per_s\": {bps:.0}, \"size\": {size}, \"msgs_per_s\": {:.0}}}",
        bps / size as f64
    );
    Ok(())
}
