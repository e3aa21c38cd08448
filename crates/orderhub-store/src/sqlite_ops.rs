//! SQLite side of [`crate::ops`]: leases, subscriptions, dead letters.

use crate::ops::{DeadLetterRow, Lease, OpsRead, OpsTx, ParkedRow, SubscriptionRow};
use crate::sqlite::{SqliteRead, SqliteWrite, err, from_micros, micros};
use chrono::{DateTime, Utc};
use orderhub_core::crypto::PiiCipher;
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::TenantId;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

fn bad(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        format!("stored {what} does not decode"),
    )
}

fn ttl_micros(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2)
}

fn lease_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        name: r.get(0)?,
        holder: r.get(1)?,
        fence: r.get(2)?,
        expires_at: from_micros(r.get(3)?),
        position: r.get(4)?,
        parts: Lease::decode_parts(&r.get::<_, String>(5)?),
    })
}

fn uuid(s: String, what: &str) -> Result<Uuid, StoreError> {
    s.parse().map_err(|_| bad(what))
}

fn tenant(s: String) -> Result<TenantId, StoreError> {
    TenantId::parse(&s).map_err(|_| bad("tenant id"))
}

impl OpsTx for SqliteWrite {
    fn lease_acquire(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let until = micros(now) + ttl_micros(ttl);
        let cur = self
            .c
            .prepare_cached(
                "SELECT name, holder, fence, expires_at, position, parts FROM leases WHERE name = ?1",
            )
            .map_err(err)?
            .query_row([name], lease_row)
            .optional()
            .map_err(err)?;
        self.pending.writes += 1;
        let lease = match cur {
            None => {
                self.c
                    .execute(
                        "INSERT INTO leases (name, holder, fence, expires_at, position) VALUES (?1, ?2, 1, ?3, 0)",
                        params![name, holder, until],
                    )
                    .map_err(err)?;
                Lease {
                    name: name.to_owned(),
                    holder: holder.to_owned(),
                    fence: 1,
                    expires_at: from_micros(until),
                    position: 0,
                    parts: Vec::new(),
                }
            }
            Some(l) if l.holder == holder => {
                self.c
                    .execute(
                        "UPDATE leases SET expires_at = ?1 WHERE name = ?2",
                        params![until, name],
                    )
                    .map_err(err)?;
                Lease {
                    expires_at: from_micros(until),
                    ..l
                }
            }
            Some(l) if l.expires_at <= now => {
                self.c
                    .execute(
                        "UPDATE leases SET holder = ?1, fence = fence + 1, expires_at = ?2 WHERE name = ?3",
                        params![holder, until, name],
                    )
                    .map_err(err)?;
                Lease {
                    holder: holder.to_owned(),
                    fence: l.fence + 1,
                    expires_at: from_micros(until),
                    ..l
                }
            }
            Some(_) => {
                self.pending.writes -= 1;
                return Ok(None);
            }
        };
        Ok(Some(lease))
    }

    fn lease_advance(
        &mut self,
        name: &str,
        holder: &str,
        fence: i64,
        position: i64,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE leases SET position = max(position, ?1), expires_at = ?2
                 WHERE name = ?3 AND holder = ?4 AND fence = ?5",
            )
            .map_err(err)?
            .execute(params![
                position,
                micros(now) + ttl_micros(ttl),
                name,
                holder,
                fence
            ])
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn lease_advance_parts(
        &mut self,
        name: &str,
        holder: &str,
        fence: i64,
        position: i64,
        parts: &[i64],
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE leases SET position = max(position, ?1), parts = ?2, expires_at = ?3
                 WHERE name = ?4 AND holder = ?5 AND fence = ?6",
            )
            .map_err(err)?
            .execute(params![
                position,
                Lease::encode_parts(parts),
                micros(now) + ttl_micros(ttl),
                name,
                holder,
                fence
            ])
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn lease_release(&mut self, name: &str, holder: &str, fence: i64) -> Result<(), StoreError> {
        let n = self
            .c
            .execute(
                "UPDATE leases SET expires_at = 0 WHERE name = ?1 AND holder = ?2 AND fence = ?3",
                params![name, holder, fence],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn subscription_insert(&mut self, s: &SubscriptionRow) -> Result<(), StoreError> {
        let types = serde_json::to_string(&s.event_types).map_err(|_| bad("event types"))?;
        let (url, secret) = crate::ops::columns_of(s);
        let shops = crate::ops::shops_json(s.shops.as_deref());
        self.c
            .execute(
                "INSERT INTO subscriptions (tenant_id, subscription_id, url, event_types, secret,
                                            description, created_at, shops, format, template)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    s.tenant_id.as_str(),
                    s.subscription_id.to_string(),
                    url,
                    types,
                    self.cipher.encrypt(&secret),
                    s.description,
                    micros(s.created_at),
                    shops,
                    s.format.as_str(),
                    s.template
                ],
            )
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn subscription_delete(&mut self, tenant: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "DELETE FROM subscriptions WHERE tenant_id = ?1 AND subscription_id = ?2",
                params![tenant.as_str(), id.to_string()],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn subscription_set_template(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        template: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "UPDATE subscriptions SET template = ?3 WHERE tenant_id = ?1 AND subscription_id = ?2",
                params![tenant.as_str(), id.to_string(), template],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn dead_letter_put(&mut self, d: &DeadLetterRow) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO dead_letters VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'dead', ?11, ?11)
                 ON CONFLICT (tenant_id, subscription_id, event_id) DO UPDATE
                 SET attempts = attempts + excluded.attempts, last_error = excluded.last_error,
                     state = 'dead', updated_at = excluded.updated_at",
            )
            .map_err(err)?
            .execute(params![
                d.tenant_id.as_str(),
                d.dead_letter_id.to_string(),
                d.subscription_id.to_string(),
                d.event_id.to_string(),
                d.event_type,
                d.aggregate_id.to_string(),
                d.seq,
                d.body,
                i64::from(d.attempts),
                d.last_error,
                micros(d.updated_at)
            ])
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn dead_letter_move(
        &mut self,
        tenant: &TenantId,
        id: Option<Uuid>,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = match id {
            Some(id) => self.c.execute(
                "UPDATE dead_letters SET state = ?1, updated_at = ?2
                 WHERE tenant_id = ?3 AND dead_letter_id = ?4 AND state = ?5",
                params![to, micros(now), tenant.as_str(), id.to_string(), from],
            ),
            None => self.c.execute(
                "UPDATE dead_letters SET state = ?1, updated_at = ?2 WHERE tenant_id = ?3 AND state = ?4",
                params![to, micros(now), tenant.as_str(), from],
            ),
        }
        .map_err(err)? as u64;
        self.pending.writes += n;
        Ok(n)
    }

    fn parked_put(&mut self, p: &ParkedRow) -> Result<(), StoreError> {
        self.c
            .prepare_cached(
                "INSERT INTO parked_deliveries VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (tenant_id, target_id, event_id) DO UPDATE
                 SET attempts = excluded.attempts, last_error = excluded.last_error,
                     next_attempt_at = excluded.next_attempt_at
                 WHERE excluded.attempts > parked_deliveries.attempts",
            )
            .map_err(err)?
            .execute(params![
                p.tenant_id.as_str(),
                p.target_id.to_string(),
                p.event_id.to_string(),
                p.event_type,
                p.aggregate_id.to_string(),
                p.seq,
                p.body,
                i64::from(p.attempts),
                p.last_error,
                micros(p.next_attempt_at),
                micros(p.created_at)
            ])
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(())
    }

    fn parked_remove(
        &mut self,
        tenant: &TenantId,
        target: Uuid,
        event: Uuid,
        aggregate: Uuid,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .prepare_cached(
                "DELETE FROM parked_deliveries WHERE tenant_id = ?1 AND target_id = ?2 AND event_id = ?3",
            )
            .map_err(err)?
            .execute(params![tenant.as_str(), target.to_string(), event.to_string()])
            .map_err(err)?;
        self.pending.writes += n as u64;
        self.parked_lane_has(tenant, target, aggregate)
    }

    fn parked_lane_has(
        &mut self,
        tenant: &TenantId,
        target: Uuid,
        aggregate: Uuid,
    ) -> Result<bool, StoreError> {
        self.c
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM parked_deliveries
                 WHERE tenant_id = ?1 AND target_id = ?2 AND aggregate_id = ?3)",
            )
            .map_err(err)?
            .query_row(
                params![tenant.as_str(), target.to_string(), aggregate.to_string()],
                |r| r.get(0),
            )
            .map_err(err)
    }

    fn parked_take_lane(
        &mut self,
        t: &TenantId,
        target: Uuid,
        aggregate: Uuid,
    ) -> Result<Vec<ParkedRow>, StoreError> {
        let rows: Vec<ParkedRow> = {
            let mut st = self
                .c
                .prepare_cached(
                    "SELECT tenant_id, target_id, event_id, event_type, aggregate_id, seq, body,
                            attempts, last_error, next_attempt_at, created_at
                     FROM parked_deliveries
                     WHERE tenant_id = ?1 AND target_id = ?2 AND aggregate_id = ?3
                     ORDER BY seq LIMIT ?4",
                )
                .map_err(err)?;
            let raw = st
                .query_map(
                    params![
                        t.as_str(),
                        target.to_string(),
                        aggregate.to_string(),
                        i64::from(crate::ops::PARKED_DUE_MAX)
                    ],
                    raw_parked,
                )
                .map_err(err)?;
            raw.map(|r| parked_from_raw(r.map_err(err)?))
                .collect::<Result<_, StoreError>>()?
        };
        for r in &rows {
            self.parked_remove(t, target, r.event_id, aggregate)?;
        }
        Ok(rows)
    }
}

fn subscription_rows(
    c: &Connection,
    cipher: &PiiCipher,
    tenant_filter: Option<&TenantId>,
) -> Result<Vec<SubscriptionRow>, StoreError> {
    let mut st = c
        .prepare_cached(
            "SELECT tenant_id, subscription_id, url, event_types, secret, description, created_at, shops,
                    format, template
             FROM subscriptions WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY tenant_id, subscription_id",
        )
        .map_err(err)?;
    let raw = st
        .query_map([tenant_filter.map(|t| t.as_str())], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, Option<String>>(9)?,
            ))
        })
        .map_err(err)?;
    let mut out = Vec::new();
    for row in raw {
        let (t, id, url, types, secret, description, at, shops, format, template) =
            row.map_err(err)?;
        let format = crate::ops::SubscriptionFormat::parse(&format)
            .ok_or_else(|| bad("subscription format"))?;
        let secret = cipher
            .decrypt(&secret)
            .map_err(|_| bad("subscription secret"))?;
        let (url, secret) = crate::ops::from_columns(format, url, secret)?;
        out.push(SubscriptionRow {
            tenant_id: tenant(t)?,
            subscription_id: uuid(id, "subscription id")?,
            url,
            event_types: serde_json::from_str(&types).map_err(|_| bad("event types"))?,
            secret,
            description,
            created_at: from_micros(at),
            shops: crate::ops::shops_from_json(shops.as_deref())?,
            format,
            template,
        });
    }
    Ok(out)
}

/// A `parked_deliveries` row as SQLite gives it (columns in table order).
type RawParked = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    String,
    i64,
    i64,
);

fn raw_parked(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawParked> {
    RawParked::try_from(r)
}

fn parked_from_raw(r: RawParked) -> Result<ParkedRow, StoreError> {
    Ok(ParkedRow {
        tenant_id: tenant(r.0)?,
        target_id: uuid(r.1, "target id")?,
        event_id: uuid(r.2, "event id")?,
        event_type: r.3,
        aggregate_id: uuid(r.4, "aggregate id")?,
        seq: r.5,
        body: r.6,
        attempts: u32::try_from(r.7).unwrap_or(u32::MAX),
        last_error: r.8,
        next_attempt_at: from_micros(r.9),
        created_at: from_micros(r.10),
    })
}

const DL_COLUMNS: &str = "tenant_id, dead_letter_id, subscription_id, event_id, event_type, aggregate_id, seq, body, attempts, last_error, state, created_at, updated_at";

type RawDl = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    String,
    String,
    i64,
    i64,
);

fn raw_dl(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawDl> {
    RawDl::try_from(r)
}

fn dl_from_raw(r: RawDl) -> Result<DeadLetterRow, StoreError> {
    Ok(DeadLetterRow {
        tenant_id: tenant(r.0)?,
        dead_letter_id: uuid(r.1, "dead letter id")?,
        subscription_id: uuid(r.2, "subscription id")?,
        event_id: uuid(r.3, "event id")?,
        event_type: r.4,
        aggregate_id: uuid(r.5, "aggregate id")?,
        seq: r.6,
        body: r.7,
        attempts: u32::try_from(r.8).unwrap_or(u32::MAX),
        last_error: r.9,
        state: r.10,
        created_at: from_micros(r.11),
        updated_at: from_micros(r.12),
    })
}

impl OpsRead for SqliteRead {
    fn tenants(&mut self) -> Result<Vec<TenantId>, StoreError> {
        let mut st = self
            .c
            .prepare_cached("SELECT tenant_id FROM tenants ORDER BY tenant_id")
            .map_err(err)?;
        let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        rows.map(|r| tenant(r.map_err(err)?)).collect()
    }

    fn outbox_head(&mut self, t: &TenantId) -> Result<i64, StoreError> {
        Ok(self
            .c
            .prepare_cached("SELECT last_seq FROM outbox_heads WHERE tenant_id = ?1")
            .map_err(err)?
            .query_row([t.as_str()], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(err)?
            .unwrap_or(0))
    }

    fn leases(&mut self, prefix: &str) -> Result<Vec<Lease>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT name, holder, fence, expires_at, position, parts FROM leases
                 WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
            )
            .map_err(err)?;
        let rows = st.query_map([prefix], lease_row).map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn subscriptions(&mut self, t: Option<&TenantId>) -> Result<Vec<SubscriptionRow>, StoreError> {
        subscription_rows(&self.c, &self.cipher, t)
    }

    fn dead_letters(
        &mut self,
        t: Option<&TenantId>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
        subscriptions: Option<&[Uuid]>,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        let subs = subscriptions.map(|s| {
            serde_json::to_string(&s.iter().map(Uuid::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
        });
        let sql = format!(
            "SELECT {DL_COLUMNS} FROM dead_letters
             WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR dead_letter_id > ?3)
               AND (?5 IS NULL OR subscription_id IN (SELECT value FROM json_each(?5)))
             ORDER BY dead_letter_id LIMIT ?4"
        );
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(
                params![
                    t.map(|t| t.as_str()),
                    state,
                    after.map(|a| a.to_string()),
                    i64::from(limit),
                    subs
                ],
                raw_dl,
            )
            .map_err(err)?;
        rows.map(|r| dl_from_raw(r.map_err(err)?)).collect()
    }

    fn dead_letter(&mut self, t: &TenantId, id: Uuid) -> Result<Option<DeadLetterRow>, StoreError> {
        let sql = format!(
            "SELECT {DL_COLUMNS} FROM dead_letters WHERE tenant_id = ?1 AND dead_letter_id = ?2"
        );
        let raw = self
            .c
            .prepare_cached(&sql)
            .map_err(err)?
            .query_row(params![t.as_str(), id.to_string()], raw_dl)
            .optional()
            .map_err(err)?;
        raw.map(dl_from_raw).transpose()
    }

    fn dead_letter_depth(&mut self) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT tenant_id, count(*) FROM dead_letters WHERE state <> 'delivered' GROUP BY tenant_id",
            )
            .map_err(err)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(err)?;
        rows.map(|r| {
            let (t, n) = r.map_err(err)?;
            Ok((tenant(t)?, n as u64))
        })
        .collect()
    }

    fn parked_due(
        &mut self,
        t: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ParkedRow>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT p.tenant_id, p.target_id, p.event_id, p.event_type, p.aggregate_id, p.seq, p.body,
                        p.attempts, p.last_error, p.next_attempt_at, p.created_at
                 FROM parked_deliveries p
                 WHERE p.tenant_id = ?1 AND p.next_attempt_at <= ?2
                   AND NOT EXISTS (SELECT 1 FROM parked_deliveries e
                                   WHERE e.tenant_id = p.tenant_id AND e.target_id = p.target_id
                                     AND e.aggregate_id = p.aggregate_id AND e.seq < p.seq)
                 ORDER BY p.next_attempt_at LIMIT ?3",
            )
            .map_err(err)?;
        let rows = st
            .query_map(
                params![t.as_str(), micros(now), i64::from(limit)],
                raw_parked,
            )
            .map_err(err)?;
        rows.map(|r| parked_from_raw(r.map_err(err)?)).collect()
    }

    fn parked_lanes(&mut self, t: &TenantId) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT DISTINCT target_id, aggregate_id FROM parked_deliveries WHERE tenant_id = ?1",
            )
            .map_err(err)?;
        let rows = st
            .query_map(params![t.as_str()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(err)?;
        rows.map(|r| {
            let (a, b) = r.map_err(err)?;
            Ok((uuid(a, "target id")?, uuid(b, "aggregate id")?))
        })
        .collect()
    }

    fn parked_depth(&mut self) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let mut st = self
            .c
            .prepare_cached("SELECT tenant_id, count(*) FROM parked_deliveries GROUP BY tenant_id")
            .map_err(err)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(err)?;
        rows.map(|r| {
            let (t, n) = r.map_err(err)?;
            Ok((tenant(t)?, n as u64))
        })
        .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Channel intake

use crate::ops::{
    ChannelMessageRow, ChannelRead, ChannelRefusals, ChannelShopRow, ChannelTx, ShopToken,
    open_sealed, seal,
};

impl ChannelTx for SqliteWrite {
    fn channel_refusal_admit(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        cap: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let kept: bool = self
            .c
            .prepare_cached(
                "INSERT INTO channel_refusals VALUES (?1, ?2, ?3, min(1, ?4), 1 - min(1, ?4), ?4 > 0, ?5)
                 ON CONFLICT (tenant_id, channel, shop_id) DO UPDATE SET
                     kept = kept + (kept < ?4), dropped = dropped + (kept >= ?4),
                     last_kept = kept < ?4, last_at = ?5
                 RETURNING last_kept",
            )
            .and_then(|mut st| {
                st.query_row(
                    params![tenant.as_str(), channel, shop_id, cap, micros(now)],
                    |r| r.get(0),
                )
            })
            .map_err(err)?;
        self.pending.writes += 1;
        Ok(kept)
    }

    fn channel_shop_put(&mut self, s: &ChannelShopRow) -> Result<(), StoreError> {
        let n = self
            .c
            .execute(
                "INSERT INTO channel_shops (channel, shop_id, tenant_id, app_key, secret,
                   access_token, message_key, api_base_url, created_at, mapping, refresh_token,
                   token_expires_at, refresh_expires_at, token_problem, token_version, token_secret)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL, 1, ?14)
                 ON CONFLICT (tenant_id, channel, shop_id) DO UPDATE SET app_key = excluded.app_key,
                   secret = excluded.secret, access_token = excluded.access_token,
                   message_key = excluded.message_key, api_base_url = excluded.api_base_url,
                   mapping = excluded.mapping, refresh_token = excluded.refresh_token,
                   token_expires_at = excluded.token_expires_at,
                   refresh_expires_at = excluded.refresh_expires_at, token_problem = NULL,
                   token_version = channel_shops.token_version + 1,
                   token_secret = excluded.token_secret",
                params![
                    s.channel,
                    s.shop_id,
                    s.tenant_id.as_str(),
                    s.app_key,
                    self.cipher.encrypt(&s.secret),
                    self.cipher.encrypt(&s.access_token),
                    self.cipher.encrypt(&s.message_key),
                    s.api_base_url,
                    micros(s.created_at),
                    s.mapping,
                    self.cipher.encrypt(&s.token.refresh_token),
                    s.token.expires_at.map(micros),
                    s.token.refresh_expires_at.map(micros),
                    self.cipher.encrypt(&s.token.app_secret)
                ],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn channel_shop_token_put(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        access_token: &str,
        t: &ShopToken,
        from: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .c
            .execute(
                "UPDATE channel_shops SET access_token = ?1, refresh_token = ?2,
                   token_expires_at = ?3, refresh_expires_at = ?4, token_problem = ?5,
                   token_version = ?6
                 WHERE channel = ?7 AND shop_id = ?8 AND token_version = ?9 AND tenant_id = ?10",
                params![
                    self.cipher.encrypt(access_token),
                    self.cipher.encrypt(&t.refresh_token),
                    t.expires_at.map(micros),
                    t.refresh_expires_at.map(micros),
                    t.problem,
                    t.version,
                    channel,
                    shop_id,
                    from,
                    tenant.as_str()
                ],
            )
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn channel_message_insert(&mut self, m: &ChannelMessageRow) -> Result<bool, StoreError> {
        let headers = serde_json::to_string(&m.headers).map_err(|_| bad("headers"))?;
        let n = self
            .c
            .prepare_cached(
                "INSERT INTO channel_messages VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (tenant_id, channel, shop_id, dedup_key) DO NOTHING",
            )
            .map_err(err)?
            .execute(params![
                m.tenant_id.as_str(),
                m.message_id.to_string(),
                m.channel,
                m.shop_id,
                m.dedup_key,
                micros(m.received_at),
                headers,
                seal(&self.cipher, &m.body),
                m.state,
                m.rule,
                m.field,
                m.reason,
                i64::from(m.attempts),
                m.processed_at.map(micros)
            ])
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(n == 1)
    }

    fn channel_message_update(
        &mut self,
        tenant: &TenantId,
        id: Uuid,
        state: &str,
        rule: Option<&str>,
        field: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self
            .c
            .prepare_cached(
                "UPDATE channel_messages SET state = ?1, rule = ?2, field = ?3, reason = ?4,
                   attempts = attempts + 1, processed_at = ?5
                 WHERE tenant_id = ?6 AND message_id = ?7",
            )
            .map_err(err)?
            .execute(params![
                state,
                rule,
                field,
                reason,
                micros(now),
                tenant.as_str(),
                id.to_string()
            ])
            .map_err(err)?;
        self.pending.writes += n as u64;
        Ok(())
    }

    fn channel_messages_requeue(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = self
            .c
            .execute(
                "UPDATE channel_messages SET state = 'pending', attempts = 0
                 WHERE tenant_id = ?1 AND channel = ?2 AND shop_id = ?3 AND received_at >= ?4
                   AND dedup_key NOT LIKE 'pull-refused:%' AND dedup_key NOT LIKE 'rejected:%'",
                params![tenant.as_str(), channel, shop_id, micros(since)],
            )
            .map_err(err)? as u64;
        self.pending.writes += n;
        Ok(n)
    }

    fn channel_messages_retry_failed(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<u64, StoreError> {
        let n = self
            .c
            .execute(
                "UPDATE channel_messages SET state = 'pending', attempts = 0
                 WHERE tenant_id = ?1 AND state = 'failed' AND channel = ?2 AND shop_id = ?3",
                params![tenant.as_str(), channel, shop_id],
            )
            .map_err(err)? as u64;
        self.pending.writes += n;
        Ok(n)
    }
}

impl ChannelRead for SqliteRead {
    fn channel_refusals(&mut self, tenant: &TenantId) -> Result<Vec<ChannelRefusals>, StoreError> {
        let mut st = self
            .c
            .prepare_cached(
                "SELECT channel, shop_id, kept, dropped, last_at FROM channel_refusals
                 WHERE tenant_id = ?1 ORDER BY channel, shop_id",
            )
            .map_err(err)?;
        let rows = st
            .query_map([tenant.as_str()], |r| {
                Ok(ChannelRefusals {
                    channel: r.get(0)?,
                    shop_id: r.get(1)?,
                    kept: r.get::<_, i64>(2)? as u64,
                    dropped: r.get::<_, i64>(3)? as u64,
                    last_at: from_micros(r.get(4)?),
                })
            })
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn channel_shops_all(&mut self) -> Result<Vec<ChannelShopRow>, StoreError> {
        let keys: Vec<(String, String, String)> = self
            .c
            .prepare_cached(
                "SELECT tenant_id, channel, shop_id FROM channel_shops ORDER BY tenant_id, channel, shop_id",
            )
            .map_err(err)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        crate::ops::shops_of(self, keys)
    }

    fn channel_shops_named(
        &mut self,
        channel: &str,
        shop_id: &str,
    ) -> Result<Vec<ChannelShopRow>, StoreError> {
        let keys: Vec<(String, String, String)> = self
            .c
            .prepare_cached(
                "SELECT tenant_id, channel, shop_id FROM channel_shops
                 WHERE channel = ?1 AND shop_id = ?2 ORDER BY tenant_id",
            )
            .map_err(err)?
            .query_map(params![channel, shop_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        crate::ops::shops_of(self, keys)
    }

    fn channel_shop(
        &mut self,
        tenant_id: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<Option<ChannelShopRow>, StoreError> {
        let raw = self
            .c
            .prepare_cached(
                "SELECT tenant_id, app_key, secret, access_token, message_key, api_base_url, created_at,
                   mapping, refresh_token, token_expires_at, refresh_expires_at, token_problem,
                   token_version, token_secret
                 FROM channel_shops WHERE tenant_id = ?3 AND channel = ?1 AND shop_id = ?2",
            )
            .map_err(err)?
            .query_row(params![channel, shop_id, tenant_id.as_str()], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, Option<String>>(7)?,
                    ),
                    (
                        r.get::<_, String>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                        r.get::<_, Option<i64>>(10)?,
                        r.get::<_, Option<String>>(11)?,
                        r.get::<_, i64>(12)?,
                        r.get::<_, String>(13)?,
                    ),
                ))
            })
            .optional()
            .map_err(err)?;
        let Some(((t, app_key, secret, token, mkey, url, at, mapping), tk)) = raw else {
            return Ok(None);
        };
        // An empty text is an empty secret: token columns of rows written before tokens were kept
        // (migration 0008) hold '' rather than a sealed value; every written secret is sealed.
        let dec = |s: &str| match s {
            "" => Ok(String::new()),
            s => self.cipher.decrypt(s).map_err(|_| bad("shop secret")),
        };
        Ok(Some(ChannelShopRow {
            channel: channel.to_owned(),
            shop_id: shop_id.to_owned(),
            tenant_id: tenant(t)?,
            app_key,
            secret: dec(&secret)?,
            access_token: dec(&token)?,
            message_key: dec(&mkey)?,
            api_base_url: url,
            created_at: from_micros(at),
            mapping,
            token: ShopToken {
                refresh_token: dec(&tk.0)?,
                app_secret: dec(&tk.5)?,
                expires_at: tk.1.map(from_micros),
                refresh_expires_at: tk.2.map(from_micros),
                problem: tk.3,
                version: tk.4,
            },
        }))
    }

    fn channel_messages(
        &mut self,
        t: Option<&TenantId>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
        shops: Option<&[String]>,
    ) -> Result<Vec<ChannelMessageRow>, StoreError> {
        type Raw = (
            String,
            String,
            String,
            String,
            String,
            i64,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            Option<i64>,
        );
        // Only the conditions given, so each shape has its index (a catch-all `?1 IS NULL OR …`
        // made every call, the processor's scan for pending messages included, a full scan).
        let mut sql = String::from(
            "SELECT tenant_id, message_id, channel, shop_id, dedup_key, received_at, headers, body, state,
                    rule, field, reason, attempts, processed_at
             FROM channel_messages WHERE 1 = 1",
        );
        let mut p: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(t) = t {
            sql.push_str(" AND tenant_id = ?");
            p.push(Box::new(t.as_str().to_owned()));
        }
        if let Some(s) = state {
            let Some(c) = crate::ops::message_state_condition(s) else {
                return Ok(vec![]);
            };
            sql.push_str(" AND ");
            sql.push_str(&c);
        }
        if let Some(a) = after {
            sql.push_str(" AND message_id > ?");
            p.push(Box::new(a.to_string()));
        }
        if let Some(shops) = shops {
            // One parameter however many shops (a scope has no SQL-variable limit to hit).
            sql.push_str(" AND shop_id IN (SELECT value FROM json_each(?))");
            p.push(Box::new(serde_json::to_string(shops).unwrap_or_default()));
        }
        sql.push_str(" ORDER BY message_id LIMIT ?");
        p.push(Box::new(i64::from(limit)));
        let mut st = self.c.prepare_cached(&sql).map_err(err)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(p.iter()), |r| Raw::try_from(r))
            .map_err(err)?;
        let mut out = Vec::new();
        for r in rows {
            let r = r.map_err(err)?;
            out.push(ChannelMessageRow {
                tenant_id: tenant(r.0)?,
                message_id: uuid(r.1, "message id")?,
                channel: r.2,
                shop_id: r.3,
                dedup_key: r.4,
                received_at: from_micros(r.5),
                headers: serde_json::from_str(&r.6).map_err(|_| bad("headers"))?,
                body: open_sealed(&self.cipher, &r.7)?,
                state: r.8,
                rule: r.9,
                field: r.10,
                reason: r.11,
                attempts: u32::try_from(r.12).unwrap_or(0),
                processed_at: r.13.map(from_micros),
            });
        }
        Ok(out)
    }
}
