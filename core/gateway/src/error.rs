//! The gateway's error responses: an HTTP status and a JSON `{code, message}` body with a
//! stable code (DESIGN §5). Every handler returns [`ApiError`]; internal failures are logged
//! with their detail and reported to the client without it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::DbError;
use cloudkeep_api::{ErrorBody, ErrorCode};

/// An error a handler answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// `internal`: logs `detail`, tells the client only that the gateway failed.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(
            ErrorCode::Internal,
            "the gateway failed to handle the request; the SP finds the reason in the gateway log",
        )
    }

    /// The provider's storage is full.
    pub fn storage_full() -> Self {
        tracing::error!("the storage is full: a tenant's write was refused");
        Self::new(
            ErrorCode::StorageFull,
            "the service provider's storage is full, so this could not be stored; your earlier restore points are intact. Try again later, and tell your service provider",
        )
    }

    /// An I/O failure of the gateway's storage: a full disk says so, anything else is
    /// internal.
    pub fn io(e: std::io::Error) -> Self {
        if is_full(&e) {
            Self::storage_full()
        } else {
            Self::internal(e)
        }
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Banned => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::AccountDisabled | ErrorCode::LeaseExpired => StatusCode::FORBIDDEN,
            // The tenant's write does not fit what it may store: its request, not a failure.
            ErrorCode::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::TooManyTasks => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Maintenance
            | ErrorCode::Draining
            | ErrorCode::Busy
            | ErrorCode::HostUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code;
        let mut response = (
            status,
            Json(ErrorBody {
                code,
                message: self.message,
            }),
        )
            .into_response();
        // For the metrics: errors by code.
        response.extensions_mut().insert(code);
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(_) => Self::new(ErrorCode::Conflict, e.to_string()),
            DbError::NotFound(_) => Self::not_found(e.to_string()),
            DbError::Invalid(_) => Self::bad_request(e.to_string()),
            DbError::QuotaFull(_) => Self::new(ErrorCode::QuotaExceeded, e.to_string()),
            DbError::Busy(_) => Self::new(ErrorCode::Busy, e.to_string()),
            other if other.is_storage_full() => Self::storage_full(),
            other => Self::internal(other),
        }
    }
}

/// Turns axum's rejections of malformed bodies into `bad_request` with the reason.
pub fn from_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::bad_request(format!(
        "the request body is not what this call takes: {}",
        rejection.body_text()
    ))
}

/// Whether an I/O error says the disk (or a quota of the file system) is full.
pub fn is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
