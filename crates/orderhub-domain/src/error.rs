use std::fmt;

/// A value that breaks a rule: which field, which rule, and a sentence for people.
///
/// `field` is a path as the client wrote it (`lines[0].quantity`), `rule` a stable machine code
/// (`must_be_positive`), so clients can act on it without parsing the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub field: String,
    pub rule: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            rule,
            message: message.into(),
        }
    }

    /// The same error, placed under a parent path (`0.quantity` under `lines` → `lines[0].quantity`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = if self.field.starts_with('[') || self.field.is_empty() {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ValidationError {}
