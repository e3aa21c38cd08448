//! The order as a stored document: the domain order with its personal fields encrypted.

use orderhub_core::crypto::PiiCipher;
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::order::Receiver;
use orderhub_domain::{Order, Personal};

/// The receivers a stored order holds: its own, and the channel's version not applied after
/// release (`channel_seen.unapplied`), whose personal fields are encrypted alike.
fn receivers(o: &mut Order) -> impl Iterator<Item = &mut Receiver> {
    std::iter::once(&mut o.receiver)
        .chain(o.channel_seen.unapplied.as_mut().map(|u| &mut u.receiver))
}

pub(crate) fn encode(order: &Order, cipher: &PiiCipher) -> Result<Vec<u8>, StoreError> {
    let mut o = order.clone();
    for r in receivers(&mut o) {
        for p in [&mut r.name, &mut r.phone, &mut r.detail] {
            *p = Personal::new(cipher.encrypt(p.expose()));
        }
    }
    serde_json::to_vec(&o).map_err(|e| StoreError::new(StoreErrorKind::Other, e.to_string()))
}

pub(crate) fn decode(bytes: &[u8], cipher: &PiiCipher) -> Result<Order, StoreError> {
    let mut o: Order = serde_json::from_slice(bytes).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("order document does not decode: {e}"),
        )
    })?;
    for r in receivers(&mut o) {
        for p in [&mut r.name, &mut r.phone, &mut r.detail] {
            let clear = cipher
                .decrypt(p.expose())
                .map_err(|e| StoreError::new(StoreErrorKind::Corrupt, e.to_string()))?;
            *p = Personal::new(clear);
        }
    }
    Ok(o)
}
