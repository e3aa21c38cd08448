//! Invoice profiles (issue 23) as values: the tax id check, a profile's fields with their limits,
//! and the compliance scan's verdict on one order. Pure: storage and versions live in
//! `orderhub-core::customers`.
//!
//! Tax ids are the 18-character unified social credit code (统一社会信用代码) of GB 32100-2015.
//! The old 15-digit tax registration numbers (税务登记号) are refused: they were replaced by the
//! unified code when the "three certificates in one" reform ended in 2017, so a profile carrying
//! one is out of date, and the old number has no check digit we could verify.

use crate::ValidationError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The 31 characters of the code, in value order: 0-9 and the capitals without I, O, S, V, Z
/// (GB 32100-2015, 4.2 "代码字符集").
const CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// The weights of positions 1-17 (GB 32100-2015, 5.2: 3^(i-1) mod 31).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// A unified social credit code has exactly this many characters.
pub const TAX_ID_LEN: usize = 18;

/// A unified social credit code whose check digit holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxId(String);

fn value_of(c: u8) -> Option<u32> {
    CHARSET.iter().position(|x| *x == c).map(|p| p as u32)
}

/// The check character of the first 17 characters (each already in the charset): C18 =
/// 31 − (Σ value × weight mod 31), where 31 is written 0 (GB 32100-2015, 5.2).
fn check_char(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (c, w) in body.iter().zip(WEIGHTS) {
        sum += value_of(*c)? * w;
    }
    let c = (31 - sum % 31) % 31;
    Some(CHARSET[c as usize])
}

impl TaxId {
    /// Parses a code: surrounding spaces are dropped and lower-case letters taken as capitals;
    /// a wrong length is `length`, a character outside the set `charset`, a wrong last character
    /// `check_digit` (each on field `tax_id`).
    pub fn parse(s: &str) -> Result<TaxId, ValidationError> {
        let s = s.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if s.chars().count() == 15 && s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ValidationError::new(
                "tax_id",
                "length",
                "15-digit tax registration numbers are no longer taken: give the 18-character \
                 unified social credit code",
            ));
        }
        if s.chars().count() != TAX_ID_LEN || b.len() != TAX_ID_LEN {
            return Err(ValidationError::new(
                "tax_id",
                "length",
                format!("tax_id must be the {TAX_ID_LEN}-character unified social credit code"),
            ));
        }
        if let Some(p) = b.iter().position(|c| value_of(*c).is_none()) {
            return Err(ValidationError::new(
                "tax_id",
                "charset",
                format!(
                    "tax_id character {} is not one of 0-9 A-H J-N P-R T-U W-Y",
                    p + 1
                ),
            ));
        }
        match check_char(&b[..17]) {
            Some(c) if c == b[17] => Ok(TaxId(s)),
            Some(c) => Err(ValidationError::new(
                "tax_id",
                "check_digit",
                format!(
                    "tax_id check digit is {}, its first 17 characters give {}",
                    b[17] as char, c as char
                ),
            )),
            None => Err(ValidationError::new(
                "tax_id",
                "charset",
                "tax_id holds a character outside the code's set",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 普票 (`normal`) or 专票 (`special`, VAT special invoice: needs bank and address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    Normal,
    Special,
}

impl InvoiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Normal => "normal",
            InvoiceKind::Special => "special",
        }
    }
    pub fn parse(s: &str) -> Option<InvoiceKind> {
        [InvoiceKind::Normal, InvoiceKind::Special]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Paper or electronic invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceMedium {
    Paper,
    Electronic,
}

impl InvoiceMedium {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceMedium::Paper => "paper",
            InvoiceMedium::Electronic => "electronic",
        }
    }
    pub fn parse(s: &str) -> Option<InvoiceMedium> {
        [InvoiceMedium::Paper, InvoiceMedium::Electronic]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A title (company name) at most this many characters: the longest registered company names
/// are well under 100.
pub const TITLE_MAX: usize = 100;
/// Bank name, address: at most this many characters (what a 专票's 开户行及账号 / 地址电话 box
/// holds, with room).
pub const TEXT_MAX: usize = 200;
/// A bank account number at most this many characters (Chinese accounts are up to ~30 digits).
pub const ACCOUNT_MAX: usize = 40;
/// A phone at most this many characters (landline with extension).
pub const PHONE_MAX: usize = 30;

/// What one version of an invoice profile says. Title, tax id, bank, address and phone may name
/// a person (a sole trader's profile): the store seals them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileContent {
    pub title: String,
    /// As given; [`ProfileContent::validate`] checks it. Kept as text so that a stored profile
    /// written before a stricter check is still read (the scan then reports it).
    pub tax_id: String,
    pub kind: InvoiceKind,
    pub medium: InvoiceMedium,
    pub bank_name: Option<String>,
    pub bank_account: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
}

fn bounded(field: &str, v: &str, max: usize) -> Result<(), ValidationError> {
    if v.trim().is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if v.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "control_character",
            format!("{field} must not hold control characters"),
        ));
    }
    Ok(())
}

impl ProfileContent {
    /// Checks every field: the first fault, naming field and rule. A 专票 (`special`) needs bank
    /// name, bank account, address and phone (they are printed on it).
    pub fn validate(&self) -> Result<(), ValidationError> {
        bounded("title", &self.title, TITLE_MAX)?;
        TaxId::parse(&self.tax_id)?;
        let optional = [
            ("bank_name", &self.bank_name, TEXT_MAX),
            ("bank_account", &self.bank_account, ACCOUNT_MAX),
            ("address", &self.address, TEXT_MAX),
            ("phone", &self.phone, PHONE_MAX),
        ];
        for (field, v, max) in optional {
            match v {
                Some(v) => bounded(field, v, max)?,
                None if self.kind == InvoiceKind::Special => {
                    return Err(ValidationError::new(
                        field,
                        "required_for_special",
                        format!("a special (专票) invoice profile needs {field}"),
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }
}

/// Why the scan puts an order in the review pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanReason {
    /// The order names a profile id that no customer's profile has.
    UnknownProfile,
    /// The profile's tax id fails [`TaxId::parse`] (stored before the check, or edited in).
    InvalidTaxId,
    /// The profile's current version is deactivated.
    Deactivated,
    /// The profile's current version expired.
    Expired,
    /// The profile's current content differs from the version the order took (a later version
    /// changed title, tax id, type, medium, bank, address or phone; a deactivation alone is
    /// `deactivated`, not this).
    Outdated,
}

impl ScanReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanReason::UnknownProfile => "unknown_profile",
            ScanReason::InvalidTaxId => "invalid_tax_id",
            ScanReason::Deactivated => "deactivated",
            ScanReason::Expired => "expired",
            ScanReason::Outdated => "outdated",
        }
    }
}

/// What the scan knows of the profile an order names: its current version's number, state and
/// content.
#[derive(Debug, Clone, Copy)]
pub struct CurrentProfile<'a> {
    pub version: u32,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub content: &'a ProfileContent,
}

/// The scan's verdict on one order whose invoice profile is `current` (`None`: no such profile)
/// and which took version `taken` with its content (`None`: the order named the profile without
/// a version; a content of `None`: that version is not stored): every reason that holds, in a
/// fixed order; empty when the order is fine.
pub fn scan_reasons(
    taken: Option<(u32, Option<&ProfileContent>)>,
    current: Option<CurrentProfile<'_>>,
    now: DateTime<Utc>,
) -> Vec<ScanReason> {
    let Some(cur) = current else {
        return vec![ScanReason::UnknownProfile];
    };
    let mut out = Vec::new();
    if TaxId::parse(&cur.content.tax_id).is_err() {
        out.push(ScanReason::InvalidTaxId);
    }
    if !cur.active {
        out.push(ScanReason::Deactivated);
    }
    if cur.expires_at.is_some_and(|e| e <= now) {
        out.push(ScanReason::Expired);
    }
    if let Some((v, content)) = taken
        && v != cur.version
        && content != Some(cur.content)
    {
        out.push(ScanReason::Outdated);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Codes published by the companies themselves (business licences, site footers); each is
    /// taken as it is printed.
    const PUBLISHED: &[(&str, &str)] = &[
        (
            "91440300MA5H0HLK5U",
            "柯兴科技（深圳）有限公司, site footer",
        ),
        ("914403001922038216", "华为技术有限公司"),
        ("91330100716105852F", "阿里巴巴（中国）有限公司"),
        ("91440300708461136T", "深圳市腾讯计算机系统有限公司"),
        ("91520000214434146R", "贵州茅台酒股份有限公司"),
    ];

    #[test]
    fn published_codes_pass_their_check_digit() {
        for (code, who) in PUBLISHED {
            assert_eq!(
                TaxId::parse(code).map(|t| t.0),
                Ok((*code).to_owned()),
                "{who}"
            );
        }
    }

    fn rule_of(s: &str) -> &'static str {
        TaxId::parse(s).map_or_else(|e| e.rule, |_| "ok")
    }

    #[test]
    fn each_fault_names_its_rule() {
        let table: &[(&str, &str)] = &[
            ("914403001922038216", "ok"),
            (" 91330100716105852f ", "ok"),
            // The last character changed: the check digit no longer holds.
            ("914403001922038217", "check_digit"),
            ("91330100716105852G", "check_digit"),
            // Two neighbours swapped: caught (weights differ).
            ("914403001922038261", "check_digit"),
            // I, O, S, V, Z are not in the set.
            ("91440300MA5H0HLK5I", "charset"),
            ("9144030O708461136T", "charset"),
            ("91440300-08461136T", "charset"),
            ("9144030070846113", "length"),
            ("91440300708461136TT", "length"),
            ("", "length"),
            ("９１４４０３００１９２２０３８２１６", "length"),
            // An old 15-digit tax registration number.
            ("440300192203821", "length"),
        ];
        for (s, want) in table {
            assert_eq!(rule_of(s), *want, "{s:?}");
        }
    }

    #[test]
    fn a_check_digit_of_31_is_written_zero() {
        // Find a body whose sum is 0 mod 31: its check character is '0', never "31".
        let body = b"00000000000000000";
        assert_eq!(check_char(body), Some(b'0'));
        assert_eq!(rule_of("000000000000000000"), "ok");
    }

    fn content(kind: InvoiceKind) -> ProfileContent {
        ProfileContent {
            title: "华为技术有限公司".into(),
            tax_id: "914403001922038216".into(),
            kind,
            medium: InvoiceMedium::Electronic,
            bank_name: None,
            bank_account: None,
            address: None,
            phone: None,
        }
    }

    #[test]
    fn a_special_profile_needs_bank_and_address() {
        assert!(content(InvoiceKind::Normal).validate().is_ok());
        let e = content(InvoiceKind::Special).validate().unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.rule),
            ("bank_name", "required_for_special")
        );
        let mut c = content(InvoiceKind::Special);
        c.bank_name = Some("招商银行深圳分行".into());
        c.bank_account = Some("1".repeat(41));
        c.address = Some("深圳市龙岗区".into());
        c.phone = Some("0755-28780808".into());
        let e = c.validate().unwrap_err();
        assert_eq!((e.field.as_str(), e.rule), ("bank_account", "too_long"));
        c.bank_account = Some("755900001010001".into());
        assert!(c.validate().is_ok());
        c.title = " ".into();
        assert_eq!(c.validate().unwrap_err().rule, "required");
    }

    #[test]
    fn the_scan_names_every_reason_that_holds() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
        let mut c = content(InvoiceKind::Normal);
        let old = content(InvoiceKind::Special);
        let cur = |c: &ProfileContent, v, active, exp| {
            scan_reasons(
                Some((1, Some(&old))),
                Some(CurrentProfile {
                    version: v,
                    active,
                    expires_at: exp,
                    content: c,
                }),
                now,
            )
        };
        assert!(cur(&c, 1, true, None).is_empty());
        // A later version with the same content (a deactivation, a new expiry) is not a change.
        let same = content(InvoiceKind::Special);
        assert!(
            scan_reasons(
                Some((1, Some(&same))),
                Some(CurrentProfile {
                    version: 3,
                    active: true,
                    expires_at: None,
                    content: &same,
                }),
                now,
            )
            .is_empty()
        );
        assert_eq!(cur(&c, 2, true, None), vec![ScanReason::Outdated]);
        assert_eq!(
            cur(&c, 2, false, Some(now)),
            vec![
                ScanReason::Deactivated,
                ScanReason::Expired,
                ScanReason::Outdated
            ]
        );
        c.tax_id = "914403001922038217".into();
        assert_eq!(cur(&c, 1, true, None), vec![ScanReason::InvalidTaxId]);
        assert_eq!(
            scan_reasons(None, None, now),
            vec![ScanReason::UnknownProfile]
        );
    }
}
