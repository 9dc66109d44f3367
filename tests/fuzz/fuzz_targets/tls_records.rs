//! A client's TLS bytes at percore's record layer (`tls::session::TlsLink`
//! with the server configuration `tls::config::build` makes from a
//! certificate and key on disk), two ways, chosen by the first byte:
//! - arbitrary bytes, in arbitrary pieces, at a server waiting for a
//!   ClientHello: an error or progress, never a panic or a hang;
//! - a real rustls client completes the handshake, then the input travels
//!   as application data both ways and must arrive whole and in order,
//!   and is then sent again as raw bytes among the records.
#![no_main]

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use percore::config::tls::TlsOptions;
use percore::tls::session::{Phase, TlsLink};
use percore_core::read_buffer::ReadBuffer;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig};

struct Configs {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

/// One certificate for the whole run: written to a scratch directory and
/// read back through percore's own configuration code.
fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let dir = std::env::temp_dir().join(format!("percore-fuzz-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&cert_file, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        let options = TlsOptions {
            cert_file: Some(cert_file),
            key_file: Some(key_file),
            ..TlsOptions::default()
        };
        let server = percore::tls::config::build(&options)
            .expect("server config")
            .config;
        let mut roots = RootCertStore::empty();
        let der: CertificateDer<'static> = cert.der().clone();
        roots.add(der).expect("root");
        let client =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        Configs {
            server,
            client: Arc::new(client),
        }
    })
}

/// `bytes` cut into pieces whose sizes the selector picks.
fn pieces(bytes: &[u8], selector: u8) -> impl Iterator<Item = &[u8]> {
    let size = 1 + usize::from(selector >> 1) * 7;
    bytes.chunks(size)
}

/// Everything the server has written to its end of the socket pair.
fn drain_socket(theirs: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match theirs.read(&mut chunk) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return out,
            Err(e) => panic!("socket read: {e}"),
        }
    }
}

fn client_output(client: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut out).expect("client write");
    }
    out
}

fn raw_bytes_at_a_new_server(input: &[u8], selector: u8) {
    let link = TlsLink::new(configs().server.clone(), Phase::Handshaking).expect("link");
    let mut plaintext = ReadBuffer::new();
    for piece in pieces(input, selector) {
        if link.absorb(piece, &mut plaintext).is_err() {
            return;
        }
    }
    assert!(
        plaintext.data().is_empty(),
        "no application data before a handshake"
    );
}

fn records_after_a_handshake(input: &[u8], selector: u8) {
    let configs = configs();
    let (ours, mut theirs) = UnixStream::pair().expect("socket pair");
    ours.set_nonblocking(true).expect("nonblocking");
    theirs.set_nonblocking(true).expect("nonblocking");
    let fd = ours.as_raw_fd();
    let link = TlsLink::new(configs.server.clone(), Phase::Handshaking).expect("link");
    let mut client = ClientConnection::new(
        configs.client.clone(),
        "localhost".try_into().expect("server name"),
    )
    .expect("client");
    let mut plaintext = ReadBuffer::new();
    for _ in 0..10 {
        let to_server = client_output(&mut client);
        if !to_server.is_empty() {
            link.absorb(&to_server, &mut plaintext).expect("handshake");
        }
        assert!(link.write_now(fd).expect("server write"), "socket full");
        let to_client = drain_socket(&mut theirs);
        if !to_client.is_empty() {
            client.read_tls(&mut &to_client[..]).expect("client read");
            client.process_new_packets().expect("client handshake");
        }
        if !link.is_handshaking() && !client.is_handshaking() && !client.wants_write() {
            break;
        }
    }
    assert!(!link.is_handshaking(), "the handshake completes");
    link.set_phase(Phase::Established);

    // Client to server: all of it, in order, however the records are cut.
    client.writer().write_all(input).expect("client encrypt");
    let records = client_output(&mut client);
    for piece in pieces(&records, selector) {
        link.absorb(piece, &mut plaintext)
            .expect("application data");
    }
    assert_eq!(plaintext.data(), input, "client to server");
    plaintext.consume(plaintext.data().len());

    // Server to client.
    let slices = [std::io::IoSlice::new(input)];
    let taken = link.encrypt(&slices).expect("server encrypt");
    assert!(link.write_now(fd).expect("server write"), "socket full");
    let to_client = drain_socket(&mut theirs);
    client.read_tls(&mut &to_client[..]).expect("client read");
    client.process_new_packets().expect("client records");
    let mut received = vec![0u8; taken];
    if taken > 0 {
        client
            .reader()
            .read_exact(&mut received)
            .expect("client plaintext");
    }
    assert_eq!(received, input[..taken], "server to client");

    // The same bytes as if they were records: an error or data, no panic.
    for piece in pieces(input, selector.rotate_left(3)) {
        if link.absorb(piece, &mut plaintext).is_err() {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        raw_bytes_at_a_new_server(input, selector);
    } else {
        records_after_a_handshake(input, selector);
    }
});
