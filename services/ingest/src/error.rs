use caselink_bus::BusError;

/// What can go wrong serving ingest; mapped to a gRPC status in exactly one place ([`IngestError::into_status`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("the event stream is not ready yet (NATS unreachable?); retry")]
    NotReady,
    #[error("{field}: {count} events in one request; at most {limit}")]
    TooMany {
        field: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("serving gRPC: {0}")]
    Serve(String),
}

impl IngestError {
    /// The one mapping of ingest errors to gRPC status codes.
    pub fn into_status(self) -> tonic::Status {
        match self {
            IngestError::Bus(BusError::Unavailable(_)) | IngestError::NotReady => {
                tonic::Status::unavailable(self.to_string())
            }
            IngestError::Bus(BusError::Refused(_)) => tonic::Status::internal(self.to_string()),
            IngestError::TooMany { .. } => tonic::Status::resource_exhausted(self.to_string()),
            IngestError::Listen { .. } | IngestError::Config(_) | IngestError::Serve(_) => {
                tonic::Status::internal(self.to_string())
            }
        }
    }
}
