//! Personal data (buyer phone, address detail, receiver name): a type whose `Debug` and `Display`
//! mask the value, so it cannot reach a log by accident. Reading the clear value is explicit.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Personal(String);

/// Which masking a personal field gets when shown to someone without `pii:read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// `13800000000` → `138****0000`
    Phone,
    /// `张三丰` → `张**`
    Name,
    /// `朝阳区建国路88号` → `朝阳****`
    Address,
}

impl Personal {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The clear value. Callers decide whether the viewer may see it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn masked(&self, kind: MaskKind) -> String {
        mask(&self.0, kind)
    }
    /// The clear value to a viewer who may see it (`pii:read`), else masked as `kind`.
    pub fn shown(&self, kind: MaskKind, reveal: bool) -> String {
        if reveal {
            self.0.clone()
        } else {
            self.masked(kind)
        }
    }
}

/// `s` as [`Personal::shown`] shows it.
pub fn shown(s: &str, kind: MaskKind, reveal: bool) -> String {
    if reveal { s.to_owned() } else { mask(s, kind) }
}

impl fmt::Debug for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Personal(****)")
    }
}

impl fmt::Display for Personal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

pub fn mask(s: &str, kind: MaskKind) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    match kind {
        MaskKind::Phone => {
            if n >= 7 {
                let head: String = chars[..3].iter().collect();
                let tail: String = chars[n - 4..].iter().collect();
                format!("{head}****{tail}")
            } else {
                "****".to_owned()
            }
        }
        MaskKind::Name => match chars.first() {
            Some(c) => format!("{c}{}", "*".repeat(n.saturating_sub(1).clamp(1, 3))),
            None => String::new(),
        },
        MaskKind::Address => {
            let head: String = chars.iter().take(2.min(n / 3)).collect();
            format!("{head}****")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let p = Personal::new("13800001234");
        assert!(!format!("{p:?} {p}").contains("0001234"));
    }

    #[test]
    fn masks_follow_the_usual_chinese_shapes() {
        assert_eq!(mask("13800000000", MaskKind::Phone), "138****0000");
        assert_eq!(mask("+86 13800000000", MaskKind::Phone), "+86****0000");
        assert_eq!(mask("123", MaskKind::Phone), "****");
        assert_eq!(mask("张三丰", MaskKind::Name), "张**");
        assert_eq!(mask("李", MaskKind::Name), "李*");
        assert_eq!(
            mask("朝阳区建国路88号院3号楼", MaskKind::Address),
            "朝阳****"
        );
        assert_eq!(mask("ab", MaskKind::Address), "****");
    }
}
