//! Handshakes per second: workers that each, in a loop, connect, read INFO,
//! send CONNECT with credentials (token, user and password, an NKey
//! signature over INFO's nonce, or a user JWT with that signature) and
//! PING, read the PONG, and close. Prints one JSON line: completed
//! handshakes, failures, elapsed seconds, rate. As fast as the workers go,
//! or paced at `--per-sec` (logins arriving at a fixed rate, next to a
//! measured client: benches/auth-stall.sh).
//!
//! The same tool runs against percore and nats-server (benches/handshakes.sh).
//! `--operator-setup DIR` writes the operator-mode config and `.creds`
//! file the JWT mode uses.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Token,
    Password,
    Nkey,
    Jwt,
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
    /// The user's `.creds` file, for `--mode jwt`.
    #[arg(long)]
    creds: Option<PathBuf>,
    /// Write `DIR/server.conf` (operator mode, MEMORY resolver) and
    /// `DIR/user.creds`, and exit.
    #[arg(long)]
    operator_setup: Option<PathBuf>,
    /// Start this many handshakes a second in all (spread over the
    /// workers) instead of as many as they can.
    #[arg(long)]
    per_sec: Option<f64>,
}

/// The key that signs the nonce, and the JWT that goes with it.
struct Login {
    key: nkeys::KeyPair,
    jwt: Option<String>,
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
    if let Some(dir) = &args.operator_setup {
        if let Err(e) = percore_benches::creds::write_operator_setup(dir) {
            eprintln!("handshake-rate: {e}");
            std::process::exit(1);
        }
        return;
    }
    let login = match login_of(&args) {
        Ok(login) => login.map(Arc::new),
        Err(e) => {
            eprintln!("handshake-rate: {e}");
            std::process::exit(2);
        }
    };
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..args.workers)
        .map(|worker| {
            let (args, login) = (args.clone(), login.clone());
            let (done, failed, stop) = (done.clone(), failed.clone(), stop.clone());
            std::thread::spawn(move || {
                // Paced: this worker's k-th handshake starts at slot
                // worker + k * workers, one slot every 1/per_sec seconds;
                // a late one starts at once (no burst to catch up).
                let slot = args.per_sec.map(|r| Duration::from_secs_f64(1.0 / r));
                let mut next = start + slot.map_or(Duration::ZERO, |s| s * worker as u32);
                while !stop.load(Ordering::Relaxed) {
                    if let Some(slot) = slot {
                        if let Some(wait) = next.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        next += slot * args.workers as u32;
                    }
                    match handshake(&args, login.as_deref()) {
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

fn login_of(args: &Args) -> Result<Option<Login>, String> {
    match args.mode {
        Mode::Nkey => {
            let key =
                nkeys::KeyPair::from_seed(&args.seed).map_err(|e| format!("bad --seed: {e}"))?;
            Ok(Some(Login { key, jwt: None }))
        }
        Mode::Jwt => {
            let path = args.creds.as_ref().ok_or("--mode jwt needs --creds")?;
            let creds = percore_benches::creds::read(path)?;
            Ok(Some(Login {
                key: creds.key,
                jwt: Some(creds.jwt),
            }))
        }
        Mode::Token | Mode::Password => Ok(None),
    }
}

fn handshake(args: &Args, login: Option<&Login>) -> std::io::Result<()> {
    let stream = TcpStream::connect(&args.addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut info = String::new();
    reader.read_line(&mut info)?;
    let credentials = match args.mode {
        Mode::Token => format!("\"auth_token\":\"{}\"", args.secret),
        Mode::Password => format!("\"user\":\"{}\",\"pass\":\"{}\"", args.user, args.secret),
        Mode::Nkey | Mode::Jwt => {
            let login = login.ok_or_else(|| std::io::Error::other("no key"))?;
            let nonce = nonce_of(&info).ok_or_else(|| std::io::Error::other("no nonce"))?;
            let sig = login
                .key
                .sign(nonce.as_bytes())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let sig = data_encoding::BASE64URL_NOPAD.encode(&sig);
            match &login.jwt {
                Some(jwt) => format!("\"jwt\":\"{jwt}\",\"sig\":\"{sig}\""),
                None => format!("\"nkey\":\"{}\",\"sig\":\"{sig}\"", login.key.public_key()),
            }
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
