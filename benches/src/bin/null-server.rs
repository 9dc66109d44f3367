//! `null-server`: speaks just enough NATS to be connected to, parses every
//! operation a client sends (PUB/HPUB payloads are skipped by length) and
//! routes nothing. It exists to measure the load generator's own ceiling:
//! whatever rate percore-bench reaches against it is the most the client can
//! drive, so a broker measured well below it is not limited by the client.
//!
//! `--flood SIZE` additionally streams MSG frames of SIZE bytes to every
//! subscription as fast as the socket takes them (the subscriber's ceiling).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "null-server",
    about = "NATS protocol sink for measuring the bench client's ceiling"
)]
struct Args {
    /// Listen address (loopback only by default).
    #[arg(short = 'a', long, default_value = "127.0.0.1")]
    addr: String,
    #[arg(short = 'p', long, default_value_t = 4333)]
    port: u16,
    /// Stream MSG frames of this payload size to each subscriber.
    #[arg(long)]
    flood: Option<usize>,
}

const INFO: &str = "INFO {\"server_id\":\"NULLSERVER\",\"server_name\":\"null-server\",\"version\":\"0.0.0-null\",\"proto\":1,\"headers\":true,\"max_payload\":67108864,\"client_id\":0}\r\n";

fn main() -> io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind((args.addr.as_str(), args.port))?;
    eprintln!("null-server listening on {}:{}", args.addr, args.port);
    for stream in listener.incoming() {
        let stream = stream?;
        let flood = args.flood;
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, flood) {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    eprintln!("null-server: connection ended: {e}");
                }
            }
        });
    }
    Ok(())
}

fn serve(stream: TcpStream, flood: Option<usize>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let write = |b: &[u8]| -> io::Result<()> {
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(b)
    };
    write(INFO.as_bytes())?;
    let mut rd = stream;
    let mut buf = vec![0u8; 256 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    // Payload bytes still to skip from the previous PUB/HPUB.
    let mut skip: usize = 0;
    loop {
        // Consume what is buffered.
        loop {
            if skip > 0 {
                let n = skip.min(end - start);
                start += n;
                skip -= n;
                if skip > 0 {
                    break;
                }
            }
            let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) else {
                break;
            };
            let line = &buf[start..start + nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            start += nl + 1;
            let mut parts = line
                .split(|c| *c == b' ' || *c == b'\t')
                .filter(|p| !p.is_empty());
            let op = parts.next().unwrap_or(b"").to_ascii_uppercase();
            match op.as_slice() {
                b"PUB" | b"HPUB" => {
                    let last = parts.next_back().unwrap_or(b"");
                    let n: usize = std::str::from_utf8(last)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| {
                            io::Error::new(io::ErrorKind::InvalidData, "bad PUB size")
                        })?;
                    skip = n + 2;
                }
                b"PING" => write(b"PONG\r\n")?,
                b"SUB" => {
                    if let Some(size) = flood {
                        let subject = parts.next().unwrap_or(b"x").to_vec();
                        let sid = parts.next_back().unwrap_or(b"1").to_vec();
                        let w = writer.clone();
                        std::thread::spawn(move || flood_loop(w, &subject, &sid, size));
                    }
                }
                _ => {} // CONNECT, UNSUB, PONG: parsed and ignored
            }
        }
        if start == end {
            start = 0;
            end = 0;
        } else if start > buf.len() / 2 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        if end == buf.len() {
            let n = buf.len() * 2;
            buf.resize(n, 0);
        }
        let n = rd.read(&mut buf[end..])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        end += n;
    }
}

fn flood_loop(w: Arc<Mutex<TcpStream>>, subject: &[u8], sid: &[u8], size: usize) {
    let mut frame = Vec::new();
    frame.extend_from_slice(b"MSG ");
    frame.extend_from_slice(subject);
    frame.push(b' ');
    frame.extend_from_slice(sid);
    frame.extend_from_slice(format!(" {size}\r\n").as_bytes());
    frame.extend(std::iter::repeat_n(0u8, size));
    frame.extend_from_slice(b"\r\n");
    let mut chunk = Vec::new();
    while chunk.len() < 64 * 1024 {
        chunk.extend_from_slice(&frame);
    }
    loop {
        let mut s = w.lock().unwrap_or_else(|p| p.into_inner());
        if s.write_all(&chunk).is_err() {
            return;
        }
    }
}
