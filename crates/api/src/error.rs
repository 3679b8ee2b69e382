//! A body refused as a whole, with the HTTP status its API answers.

use serde::Serialize;

/// The HTTP status an API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HttpStatus(pub u16);

/// A body refused before anything is read or written: the status its API gives it
/// (400 for a malformed or invalid body), a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: HttpStatus,
    /// A stable snake_case code.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

impl ApiError {
    /// A 400 with this code and message.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status: HttpStatus(400),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// The body the APIs answer a refused request with: `{"success": false,
    /// "error": {"code", "message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"success": false, "error": {"code": self.code, "message": self.message}})
    }
}
