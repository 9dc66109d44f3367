//! Handshakes per second: workers that each, in a loop, connect, read INFO,
//! send CONNECT with credentials (token, user and password, or an NKey
//! signature over INFO's nonce) and PING, read the PONG, and close. Prints
//! one JSON line: completed handshakes, failures, elapsed seconds, rate.
//!
//! The same tool runs against percore and nats-server (benches/handshakes.sh).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Token,
    Password,
    Nkey,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4222")]
    addr: String,
    #[arg(long, value_enum, default_value = "token")]
    mode: Mode,
    /// Print a fresh user NKey as `SEED PUBLIC_KEY` and exit (for the
    /// server's config and `--seed`).
    #[arg(long)]
    new_user_nkey: bool,
    /// The token, or the password (user `--user`).
    #[arg(long, default_value = "")]
    secret: String,
    #[arg(long, default_value = "bench")]
    user: String,
    /// The user's NKey seed (`SU...`), for `--mode nkey`.
    #[arg(long, default_value = "")]
    seed: String,
    #[arg(long, default_value_t = 4)]
    workers: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

fn main() {
    let args = Arc::new(Args::parse());
    if args.new_user_nkey {
        let key = nkeys::KeyPair::new_user();
        match key.seed() {
            Ok(seed) => println!("{seed} {}", key.public_key()),
            Err(e) => {
                eprintln!("handshake-rate: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let key = match args.mode {
        Mode::Nkey => match nkeys::KeyPair::from_seed(&args.seed) {
            Ok(key) => Some(Arc::new(key)),
            Err(e) => {
                eprintln!("handshake-rate: bad --seed: {e}");
                std::process::exit(2);
            }
        },
        _ => None,
    };
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let (args, key) = (args.clone(), key.clone());
            let (done, failed, stop) = (done.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match handshake(&args, key.as_deref()) {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for worker in workers {
        let _ = worker.join();
    }
    println!(
        "{{\"mode\":\"{:?}\",\"handshakes\":{counted},\"failed\":{},\"seconds\":{elapsed:.3},\"per_sec\":{:.1}}}",
        args.mode,
        failed.load(Ordering::Relaxed),
        counted as f64 / elapsed
    );
}

fn handshake(args: &Args, key: Option<&nkeys::KeyPair>) -> std::io::Result<()> {
    let stream = TcpStream::connect(&args.addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut info = String::new();
    reader.read_line(&mut info)?;
    let credentials = match args.mode {
        Mode::Token => format!("\"auth_token\":\"{}\"", args.secret),
        Mode::Password => format!("\"user\":\"{}\",\"pass\":\"{}\"", args.user, args.secret),
        Mode::Nkey => {
            let key = key.ok_or_else(|| std::io::Error::other("no key"))?;
            let nonce = nonce_of(&info).ok_or_else(|| std::io::Error::other("no nonce"))?;
            let sig = key
                .sign(nonce.as_bytes())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            format!(
                "\"nkey\":\"{}\",\"sig\":\"{}\"",
                key.public_key(),
                data_encoding::BASE64URL_NOPAD.encode(&sig)
            )
        }
    };
    let mut writer = stream;
    write!(
        writer,
        "CONNECT {{\"verbose\":false,\"pedantic\":false,{credentials}}}\r\nPING\r\n"
    )?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if line != "PONG\r\n" {
        return Err(std::io::Error::other(line));
    }
    Ok(())
}

fn nonce_of(info: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(info.strip_prefix("INFO ")?.trim()).ok()?;
    Some(json["nonce"].as_str()?.to_string())
}
