//! Write-back helpers shared by the adapters: orderhub's carrier codes, the carrier lookup in a
//! channel's table, and the checks every shipment passes before a call is built.

use crate::{ApiError, Rejected, Shipment};

/// orderhub's carrier codes (the `carrier` of a [`Shipment`]).
pub const CARRIERS: [&str; 10] = [
    "sf", "jd", "cainiao", "zto", "yto", "jt", "ems", "sto", "yunda", "dbl",
];

/// A channel's carrier table: orderhub code → the channel's code or numeric id (as text).
pub type CarrierTable = [(&'static str, &'static str)];

/// The channel's code for `carrier`, or `unknown_carrier` (no call is made).
pub fn carrier_code(table: &CarrierTable, carrier: &str) -> Result<&'static str, Rejected> {
    table
        .iter()
        .find(|(ours, _)| *ours == carrier)
        .map(|(_, theirs)| *theirs)
        .ok_or_else(|| unknown_carrier(carrier))
}

/// The refusal of a carrier the channel has no code for.
pub fn unknown_carrier(carrier: &str) -> Rejected {
    let shown: String = carrier.chars().take(32).collect();
    Rejected::at(
        "unknown_carrier",
        "carrier",
        format!("the channel has no code for carrier {shown:?}"),
    )
}

/// Tracking numbers are carrier waybill numbers: ASCII letters, digits and `-`, 1..=40 long.
const TRACKING_MAX: usize = 40;
/// Channel order and line ids are short ASCII tokens (digits, letters, `-`, `_`).
const ID_MAX: usize = 64;

fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a shipment and answers the channel's carrier code. `partial`: whether the channel's
/// ship API takes line ids.
pub fn check(s: &Shipment, table: &CarrierTable, partial: bool) -> Result<&'static str, Rejected> {
    check_shipment(s, partial)?;
    carrier_code(table, &s.carrier)
}

/// The checks of [`check`] without the carrier lookup (for tables not known at compile time: the
/// custom channel's mapping).
pub fn check_shipment(s: &Shipment, partial: bool) -> Result<(), Rejected> {
    if !id_ok(&s.external_order_id) {
        return Err(Rejected::bad_value(
            "external_order_id",
            "a channel order id (ASCII letters, digits, - or _)",
        ));
    }
    let t = &s.tracking_no;
    if t.is_empty()
        || t.len() > TRACKING_MAX
        || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Rejected::bad_value(
            "tracking_no",
            "1 to 40 ASCII letters, digits or -",
        ));
    }
    if let Some(lines) = &s.line_ids {
        if !partial {
            return Err(Rejected::at(
                "partial_unsupported",
                "line_ids",
                "the channel's ship API ships whole orders only",
            ));
        }
        if lines.is_empty() || !lines.iter().all(|l| id_ok(l)) {
            return Err(Rejected::bad_value(
                "line_ids",
                "a non-empty list of channel line ids",
            ));
        }
    }
    Ok(())
}

/// Whether an `Api` error's code (plain, or `code/sub_code`) is one of `codes`.
pub fn api_code_is(e: &ApiError, codes: &[&str]) -> bool {
    match e {
        ApiError::Api { code, .. } => code.split('/').any(|part| codes.contains(&part)),
        _ => false,
    }
}

/// Reads a ship answer: the channel's error (an "already shipped" code is success), else the
/// success shape `ok` must accept.
pub(crate) fn ack(
    error: Option<ApiError>,
    already_shipped: &[&str],
    ok: impl FnOnce() -> Result<(), Rejected>,
) -> Result<(), ApiError> {
    if let Some(e) = error {
        if api_code_is(&e, already_shipped) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(ok()?)
}

/// The success flag at `pointer` (a JSON pointer) of an answer: `true` / `"true"` is success,
/// `false` a refusal without a code, absence a body that is not the ship answer.
pub(crate) fn success_flag(body: &[u8], pointer: &str) -> Result<(), Rejected> {
    let v: serde_json::Value = crate::wire::parse_json(body)?;
    let field = pointer.trim_start_matches('/').replace('/', ".");
    match v.pointer(pointer) {
        Some(serde_json::Value::Bool(true)) => Ok(()),
        Some(serde_json::Value::String(s)) if s == "true" => Ok(()),
        Some(serde_json::Value::Bool(false)) => Err(Rejected::at(
            "not_shipped",
            &field,
            "the channel answered without shipping",
        )),
        Some(serde_json::Value::String(s)) if s == "false" => Err(Rejected::at(
            "not_shipped",
            &field,
            "the channel answered without shipping",
        )),
        Some(_) => Err(Rejected::at("wrong_type", &field, "must be a boolean")),
        None => Err(Rejected::missing(&field)),
    }
}
