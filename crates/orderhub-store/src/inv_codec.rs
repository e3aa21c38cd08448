//! How inventory records are written into columns, the same for both backends.

use orderhub_core::ports::{LedgerRow, ReservedLine};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::Sku;
use orderhub_domain::ids::WarehouseId;
use orderhub_domain::inventory::{AdjustmentReason, Movement};
use serde_json::{Value, json};

fn corrupt(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!("stored {what} does not parse"),
    )
}

pub(crate) fn lines_to_json(lines: &[ReservedLine]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|l| json!({"sku": l.sku, "warehouse_id": l.warehouse_id, "quantity": l.quantity}))
            .collect(),
    )
}

pub(crate) fn lines_from_json(v: &Value) -> Result<Vec<ReservedLine>, StoreError> {
    let arr = v.as_array().ok_or_else(|| corrupt("reservation lines"))?;
    arr.iter()
        .map(|l| {
            Ok(ReservedLine {
                sku: Sku::parse(l["sku"].as_str().unwrap_or(""))
                    .map_err(|_| corrupt("reservation sku"))?,
                warehouse_id: WarehouseId::parse(l["warehouse_id"].as_str().unwrap_or(""))
                    .map_err(|_| corrupt("reservation warehouse"))?,
                quantity: l["quantity"]
                    .as_i64()
                    .ok_or_else(|| corrupt("reservation quantity"))?,
            })
        })
        .collect()
}

pub(crate) fn components_to_json(c: &Option<Vec<(Sku, u32)>>) -> Option<Value> {
    c.as_ref().map(|parts| {
        Value::Array(
            parts
                .iter()
                .map(|(s, n)| json!({"sku": s, "quantity": n}))
                .collect(),
        )
    })
}

pub(crate) fn components_from_json(
    v: Option<Value>,
) -> Result<Option<Vec<(Sku, u32)>>, StoreError> {
    let Some(v) = v else { return Ok(None) };
    let arr = v.as_array().ok_or_else(|| corrupt("kit components"))?;
    arr.iter()
        .map(|p| {
            let sku = Sku::parse(p["sku"].as_str().unwrap_or(""))
                .map_err(|_| corrupt("kit component"))?;
            let n = p["quantity"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| corrupt("kit quantity"))?;
            Ok((sku, n))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

pub(crate) fn regions_from_json(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The movement a ledger row records, from its stored name and signed quantity.
pub fn movement_of(row: &LedgerRow) -> Option<Movement> {
    let q = row.quantity;
    Some(match row.movement {
        "receipt" => Movement::Receipt { qty: q },
        "return" => Movement::Return { qty: q },
        "reserve" => Movement::Reserve { qty: q },
        "release" => Movement::Release { qty: -q },
        "consume" => Movement::Consume { qty: -q },
        "adjustment" => Movement::Adjustment {
            delta: q,
            reason: match row.reason.as_deref() {
                Some("stock_take") => AdjustmentReason::StockTake,
                Some("damaged") => AdjustmentReason::Damaged,
                Some("found") => AdjustmentReason::Found,
                Some("erp_sync") => AdjustmentReason::ErpSync,
                other => AdjustmentReason::Other(other.unwrap_or("").to_owned()),
            },
        },
        _ => return None,
    })
}

pub(crate) fn movement_static(s: &str) -> Option<&'static str> {
    [
        "receipt",
        "return",
        "reserve",
        "release",
        "consume",
        "adjustment",
    ]
    .into_iter()
    .find(|m| *m == s)
}

pub(crate) fn policy_to_cols(
    p: orderhub_domain::inventory::AllocationPolicy,
) -> (&'static str, i64) {
    use orderhub_domain::inventory::AllocationPolicy as A;
    match p {
        A::Shared => ("shared", 0),
        A::Ratio { percent } => ("ratio", i64::from(percent)),
        A::Quota { units } => ("quota", units),
    }
}

pub(crate) fn policy_from_cols(
    kind: &str,
    amount: i64,
) -> Option<orderhub_domain::inventory::AllocationPolicy> {
    use orderhub_domain::inventory::AllocationPolicy as A;
    Some(match kind {
        "shared" => A::Shared,
        "ratio" => A::Ratio {
            percent: u8::try_from(amount).ok()?,
        },
        "quota" => A::Quota { units: amount },
        _ => return None,
    })
}

/// A weight in kilograms as the stores keep it: decimal text (SQLite), `numeric` read as text
/// (PostgreSQL).
pub(crate) fn weight_to_text(w: Option<rust_decimal::Decimal>) -> Option<String> {
    w.map(|w| w.normalize().to_string())
}

pub(crate) fn weight_from_text(
    raw: Option<String>,
) -> Result<Option<rust_decimal::Decimal>, StoreError> {
    raw.map(|t| {
        t.parse::<rust_decimal::Decimal>()
            .map(|d| d.normalize())
            .map_err(|_| corrupt("weight"))
    })
    .transpose()
}

/// A warehouse's sender at rest: its JSON, encrypted whole (contact, phone and street are
/// personal-ish; province and city alone would say little, but one sealed value is simpler to
/// keep right than a mix).
pub(crate) fn sender_seal(
    cipher: &orderhub_core::crypto::PiiCipher,
    s: Option<&orderhub_core::ports::SenderAddress>,
) -> Option<String> {
    s.map(|s| {
        let clear = serde_json::json!({
            "name": s.name.expose(), "phone": s.phone.expose(), "province": s.province,
            "city": s.city, "district": s.district, "detail": s.detail.expose(),
        });
        cipher.encrypt(&clear.to_string())
    })
}

pub(crate) fn sender_open(
    cipher: &orderhub_core::crypto::PiiCipher,
    stored: Option<String>,
) -> Result<Option<orderhub_core::ports::SenderAddress>, StoreError> {
    use orderhub_domain::Personal;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let clear = cipher
        .decrypt(&stored)
        .map_err(|_| corrupt("warehouse sender"))?;
    let v: Value = serde_json::from_str(&clear).map_err(|_| corrupt("warehouse sender"))?;
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Ok(Some(orderhub_core::ports::SenderAddress {
        name: Personal::new(text("name")),
        phone: Personal::new(text("phone")),
        province: text("province"),
        city: text("city"),
        district: text("district"),
        detail: Personal::new(text("detail")),
    }))
}
