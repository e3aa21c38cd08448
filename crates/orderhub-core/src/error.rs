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
    /// An order edit, or a decision on an edit request, refused because of where the order or the
    /// request is (HTTP 409 with `code`): `edit_not_allowed`, `edit_pending`, `edit_not_pending`,
    /// `already_approved`.
    #[error("{message}")]
    EditConflict {
        code: &'static str,
        message: String,
        status: Option<Status>,
        version: Option<u64>,
    },
    /// The key that requested an edit may not approve it (HTTP 403 `own_edit`).
    #[error("{0}")]
    OwnEdit(String),
    /// No edit request with that id for this caller.
    #[error("edit request not found")]
    EditNotFound,
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
    #[error("after-sales case not found")]
    CaseNotFound,
    /// The case's state has no such move (`orderhub_domain::after_sales::next`).
    #[error("cannot {action} an after-sales case that is {} (version {version})", state.as_str())]
    CaseNotAllowed {
        action: &'static str,
        state: orderhub_domain::after_sales::CaseState,
        version: u64,
    },
    /// A case of this kind cannot be opened or approved for the order as it is now (why).
    #[error("{why} (order {status}, version {version})")]
    CaseNotNow {
        why: &'static str,
        status: Status,
        version: u64,
    },
    /// The order moved on since the case was opened: approving it now would do something else
    /// than what the case says (`expected`), so the approver must accept the new effect.
    #[error(
        "the order is now {status} (version {version}): approving would {} instead of {}; approve with \"effect\": \"{}\" to accept it", now.as_str(), expected.as_str(), now.as_str()
    )]
    EffectChanged {
        expected: orderhub_domain::after_sales::Effect,
        now: orderhub_domain::after_sales::Effect,
        status: Status,
        version: u64,
    },
    /// The exception is assigned to another key: taking it over must name that key (HTTP 409
    /// `exception_assigned`).
    #[error(
        "the exception is assigned to {holder_name} ({holder}); name them in \"replace\" to take it over"
    )]
    ExceptionAssigned { holder: String, holder_name: String },
    /// A merge, split or parcel step refused because of where the orders or the group are
    /// (HTTP 409 with `code`, naming the field — e.g. `order_ids[1]` — when one input is why).
    #[error("{message}")]
    Combine {
        code: &'static str,
        message: String,
        field: Option<String>,
        status: Option<Status>,
        version: Option<u64>,
    },
    #[error("shipment group not found")]
    GroupNotFound,
    #[error("parcel not found")]
    ParcelNotFound,
    /// A rule set refused: each fault names the rule, its field and the place (HTTP 400
    /// `invalid_rules`).
    #[error("the rule set was refused: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidRules(Vec<orderhub_rules::RuleError>),
    /// A rule set step its state does not allow, or a lost race for a version (HTTP 409 `code`).
    #[error("{message}")]
    RuleSetConflict { code: &'static str, message: String },
    /// The author's key may not approve its own rule set (HTTP 403 `own_rule_set`).
    #[error("{0}")]
    OwnRuleSet(String),
    #[error("rule set not found")]
    RuleSetNotFound,
    /// No such customer (or invoice profile) for this tenant: `what` names which.
    #[error("{0} not found")]
    CustomerNotFound(&'static str),
    /// A customer change refused because of what is stored (HTTP 409 `code`): a buyer id linked
    /// to another customer, a version taken by a concurrent change.
    #[error("{message}")]
    CustomerConflict { code: &'static str, message: String },
    /// A wave step its state does not allow (HTTP 409 `code`, e.g. `wave_wrong_state`).
    #[error("{message}")]
    WaveConflict {
        code: &'static str,
        message: String,
        status: Option<crate::waves::WaveStatus>,
    },
    #[error("wave not found")]
    WaveNotFound,
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
