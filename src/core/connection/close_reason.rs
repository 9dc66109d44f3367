//! Why a connection closed, with nats-server's `/connz` reason texts.

/// Why a connection was closed; the texts are nats-server's `/connz` reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    WriteError,
    ReadError,
    ParseError,
    StaleConnection,
    ProtocolViolation,
    BadClientProtocolVersion,
    MaxConnectionsExceeded,
    MaxAccountConnectionsExceeded,
    MaxPayloadExceeded,
    MaxControlLineExceeded,
    NoRespondersRequiresHeaders,
    AuthenticationFailure,
    AuthenticationTimeout,
    /// A JWT user's token (or its time window) expired while connected.
    AuthenticationExpired,
    /// A JWT user was revoked while connected.
    Revocation,
    ServerShutdown,
    /// The TLS handshake failed or timed out (closed without a flush).
    TlsHandshakeFailure,
    /// A second route to a server we already have a route to, or a route
    /// that led back to this server.
    DuplicateRoute,
    ClusterNameConflict,
    DuplicateServerName,
    /// A client connected to the route port.
    WrongPort,
    WrongGateway,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::AuthenticationFailure => "Authentication Failure",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::Revocation => "Credentials Revoked",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::TlsHandshakeFailure => "TLS Handshake Failure",
            CloseReason::DuplicateRoute => "Duplicate Route",
            CloseReason::ClusterNameConflict => "Cluster Name Conflict",
            CloseReason::DuplicateServerName => "Duplicate Server Name",
            CloseReason::WrongPort => "Incorrect Port",
            CloseReason::WrongGateway => "Wrong Gateway",
        }
    }

    /// Slow-consumer closes drop what is queued; every other close first
    /// tries to hand the queued bytes (an `-ERR`, say) to the socket.
    pub fn discards_pending(self) -> bool {
        matches!(
            self,
            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
        )
    }
}
