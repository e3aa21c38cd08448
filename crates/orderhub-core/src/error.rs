use crate::ports::StoreError;
use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::{Status, ValidationError};

/// Everything a use case can answer instead of success. Each variant maps to one HTTP status in
/// `orderhub-http`'s error module, and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    Validation(ValidationError),
    #[error("order not found")]
    NotFound,
    #[error("cannot {} an order that is {status} (version {version})", command.as_str())]
    NotAllowed {
        command: CommandKind,
        status: Status,
        version: u64,
    },
    /// The order carries an exception that stops it from moving towards shipment
    /// (`orderhub_domain::lifecycle::STOPS`); an operator resolves it first.
    #[error(
        "cannot {} an order stopped by the exception {exception} (status {status}, version {version}); resolve the exception first", command.as_str()
    )]
    Stopped {
        command: CommandKind,
        exception: String,
        status: Status,
        version: u64,
    },
    /// The order does not carry the exception asked about.
    #[error("the order has no open exception {0}")]
    NoSuchException(String),
    /// The exception is open but an operator may not resolve it by hand (why).
    #[error("{0}")]
    ExceptionNotResolvable(String),
    /// An operation on an order (not a lifecycle move) its status does not allow.
    #[error("cannot {action} an order that is {status} (version {version})")]
    NotNow {
        action: &'static str,
        status: Status,
        version: u64,
    },
    #[error("{0}")]
    Forbidden(String),
    /// Not enough stock in any warehouse that could ship it: the first SKU short, what was asked
    /// and the most any one candidate warehouse has.
    #[error(
        "out of stock: {sku} needs {requested}, at most {available} available in one warehouse"
    )]
    OutOfStock {
        field: String,
        sku: String,
        requested: i64,
        available: i64,
    },
    /// A stock snapshot as old as, or older than, the last one applied to its warehouse.
    #[error("{0}")]
    StaleSnapshot(String),
    #[error("reservation not found")]
    ReservationNotFound,
    #[error("{0}")]
    ReservationNotAllowed(String),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ValidationError> for CoreError {
    fn from(e: ValidationError) -> Self {
        CoreError::Validation(e)
    }
}
