//! The audit log's hash chain (issue 23): every audit entry of a tenant carries a number (`seq`,
//! 1, 2, 3 … in commit order) and the SHA-256 of the previous entry's hash and its own content, so
//! an entry edited, deleted or inserted directly in the database breaks the chain where it was
//! done. The store numbers and hashes the entries at commit, under the tenant's head row
//! (`outbox_heads`: `audit_seq`, `audit_hash`); [`Walk`] checks a tenant's chain page by page in
//! `seq` order and names the first entry that does not hold. A rewrite of the whole chain (every
//! hash computed anew, the head too) is caught by comparing the head with one published earlier
//! (`orderhub serve` logs it and emits `audit.chain_head`).

use crate::ports::AuditEntry;
use sha2::{Digest, Sha256};

/// The hash before a tenant's first entry.
pub const GENESIS: &str = "";

/// `value` with every object's keys in byte order, written without spaces: the same text whatever
/// order the keys were written in and whatever order the database gives them back (PostgreSQL's
/// `jsonb` reorders them).
fn canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of entry number `seq` of its tenant after the entry whose hash is `prev`: SHA-256 over
/// the previous hash and every column of the entry (time in whole microseconds, as both backends
/// keep it), as lowercase hex.
pub fn entry_hash(prev: &str, seq: u64, e: &AuditEntry) -> String {
    let mut detail = String::new();
    canonical(&e.detail, &mut detail);
    let fields = serde_json::json!([
        prev,
        seq,
        e.tenant_id.as_str(),
        e.order_id.to_string(),
        e.audit_id.to_string(),
        e.at.timestamp_micros(),
        e.actor,
        e.key_id,
        e.request_id,
        e.action,
        e.from_status.map(|s| s.as_str()),
        e.to_status.as_str(),
        e.from_version,
        e.to_version,
    ]);
    let mut h = Sha256::new();
    h.update(fields.to_string().as_bytes());
    h.update(b"\n");
    h.update(detail.as_bytes());
    hex::encode(h.finalize())
}

/// The `audit.chain_head` event of `tenant`'s head: its number and hash, to be kept where the
/// database's writers cannot reach (a subscriber's log), and compared with a later walk.
pub fn head_event(
    tenant: &orderhub_domain::TenantId,
    head: &ChainHead,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::ports::EventRecord {
    crate::ports::EventRecord {
        event_id: uuid::Uuid::now_v7(),
        tenant_id: tenant.clone(),
        event_type: orderhub_domain::event_types::AUDIT_CHAIN_HEAD.into(),
        // One lane of its own per tenant: the heads arrive in order.
        aggregate_id: uuid::Uuid::nil(),
        aggregate_version: head.seq,
        occurred_at: now,
        trace_id: String::new(),
        payload: serde_json::json!({"seq": head.seq, "hash": head.hash, "at": now}).to_string(),
    }
}

/// One chained entry as the store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEntry {
    pub seq: u64,
    pub hash: String,
    pub entry: AuditEntry,
}

/// A tenant's head: the number and hash of its last entry, and how many entries it had before
/// the chain began (migration 0024 left them unchained).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainHead {
    pub seq: u64,
    pub hash: String,
    pub unchained: u64,
}

/// What is wrong with a chain, at the first place it does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The entry's content (or its hash) is not what was written.
    Edited { seq: u64, audit_id: uuid::Uuid },
    /// Entries `from..=to` are missing.
    Deleted { from: u64, to: u64 },
    /// An entry the store did not write: numbered twice, beyond the head, or not numbered.
    Inserted {
        seq: Option<u64>,
        audit_id: uuid::Uuid,
    },
    /// The count of entries written before the chain began changed.
    UnchainedChanged { expected: u64, found: u64 },
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Edited { seq, audit_id } => {
                write!(f, "entry #{seq} (audit id {audit_id}) was edited")
            }
            Break::Deleted { from, to } if from == to => write!(f, "entry #{from} was deleted"),
            Break::Deleted { from, to } => write!(f, "entries #{from}–#{to} were deleted"),
            Break::Inserted {
                seq: Some(s),
                audit_id,
            } => write!(
                f,
                "entry numbered #{s} (audit id {audit_id}) was inserted outside orderhub"
            ),
            Break::Inserted {
                seq: None,
                audit_id,
            } => write!(
                f,
                "an unnumbered entry (audit id {audit_id}) was inserted outside orderhub"
            ),
            Break::UnchainedChanged { expected, found } => write!(
                f,
                "{expected} entries predate the chain but {found} are there now: some were inserted or deleted"
            ),
        }
    }
}

/// Checks a tenant's chain page by page: [`Walk::page`] with the entries in `seq` order, then
/// [`Walk::finish`] with the head and what is not numbered.
#[derive(Debug)]
pub struct Walk {
    next: u64,
    prev: String,
    pub checked: u64,
}

impl Default for Walk {
    fn default() -> Self {
        Walk {
            next: 1,
            prev: GENESIS.to_owned(),
            checked: 0,
        }
    }
}

impl Walk {
    /// The next entries in `seq` order; the first break found, if any.
    pub fn page(&mut self, entries: &[ChainedEntry]) -> Result<(), Break> {
        for c in entries {
            if c.seq < self.next {
                return Err(Break::Inserted {
                    seq: Some(c.seq),
                    audit_id: c.entry.audit_id,
                });
            }
            if c.seq > self.next {
                return Err(Break::Deleted {
                    from: self.next,
                    to: c.seq - 1,
                });
            }
            if entry_hash(&self.prev, c.seq, &c.entry) != c.hash {
                return Err(Break::Edited {
                    seq: c.seq,
                    audit_id: c.entry.audit_id,
                });
            }
            self.prev.clone_from(&c.hash);
            self.next += 1;
            self.checked += 1;
        }
        Ok(())
    }

    /// The end of the chain against the head; `unnumbered` is one entry without a number written
    /// after the chain began, if any, and `unchained` how many entries have no number.
    pub fn finish(
        &self,
        head: &ChainHead,
        unchained: u64,
        unnumbered: Option<uuid::Uuid>,
    ) -> Result<(), Break> {
        let last = self.next - 1;
        if last < head.seq {
            return Err(Break::Deleted {
                from: last + 1,
                to: head.seq,
            });
        }
        if last > head.seq {
            return Err(Break::Inserted {
                seq: Some(head.seq + 1),
                audit_id: uuid::Uuid::nil(),
            });
        }
        if self.prev != head.hash {
            return Err(Break::Edited {
                seq: last,
                audit_id: uuid::Uuid::nil(),
            });
        }
        if let Some(id) = unnumbered.filter(|_| unchained > head.unchained) {
            return Err(Break::Inserted {
                seq: None,
                audit_id: id,
            });
        }
        if unchained != head.unchained {
            return Err(Break::UnchainedChanged {
                expected: head.unchained,
                found: unchained,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderhub_domain::{OrderId, Status, TenantId};

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            audit_id: uuid::Uuid::from_u128(n as u128),
            tenant_id: TenantId::parse("t1").unwrap(),
            order_id: OrderId::from_uuid(uuid::Uuid::from_u128(7)),
            at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000 + n as i64).unwrap(),
            actor: "ops".into(),
            key_id: "k".into(),
            request_id: "r".into(),
            action: "pay".into(),
            from_status: Some(Status::PendingPayment),
            to_status: Status::Paid,
            from_version: n,
            to_version: n + 1,
            detail: serde_json::json!({"b": 1, "a": {"z": "x", "y": [1, "2"]}}),
        }
    }

    fn chain(n: u64) -> Vec<ChainedEntry> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|s| {
                let e = entry(s);
                let hash = entry_hash(&prev, s, &e);
                prev.clone_from(&hash);
                ChainedEntry {
                    seq: s,
                    hash,
                    entry: e,
                }
            })
            .collect()
    }

    fn head(c: &[ChainedEntry]) -> ChainHead {
        ChainHead {
            seq: c.len() as u64,
            hash: c.last().map(|e| e.hash.clone()).unwrap_or_default(),
            unchained: 0,
        }
    }

    fn verify(c: &[ChainedEntry], h: &ChainHead) -> Result<(), Break> {
        let mut w = Walk::default();
        for page in c.chunks(2) {
            w.page(page)?;
        }
        w.finish(h, 0, None)
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let mut a = entry(1);
        let b = entry(1);
        a.detail = serde_json::from_str(r#"{"a": {"y": [1, "2"], "z": "x"}, "b": 1}"#).unwrap();
        assert_eq!(entry_hash("", 1, &a), entry_hash("", 1, &b));
    }

    #[test]
    fn an_intact_chain_holds_and_each_change_is_named() {
        let c = chain(5);
        let h = head(&c);
        assert_eq!(verify(&c, &h), Ok(()));

        let mut edited = c.clone();
        edited[2].entry.detail = serde_json::json!({"b": 2});
        assert_eq!(
            verify(&edited, &h),
            Err(Break::Edited {
                seq: 3,
                audit_id: edited[2].entry.audit_id
            })
        );

        let mut deleted = c.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, &h), Err(Break::Deleted { from: 2, to: 2 }));

        let cut = &c[..4];
        assert_eq!(verify(cut, &h), Err(Break::Deleted { from: 5, to: 5 }));

        let mut twice = c.clone();
        twice.insert(2, c[1].clone());
        assert!(matches!(
            verify(&twice, &h),
            Err(Break::Inserted { seq: Some(2), .. })
        ));

        let mut w = Walk::default();
        w.page(&c).unwrap();
        let stray = uuid::Uuid::from_u128(99);
        assert_eq!(
            w.finish(&h, 1, Some(stray)),
            Err(Break::Inserted {
                seq: None,
                audit_id: stray
            })
        );
    }
}
