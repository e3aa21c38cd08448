//! PostgreSQL side of [`crate::ops`]: leases, subscriptions, dead letters.

use crate::ops::{DeadLetterRow, Lease, OpsRead, OpsTx, ParkedRow, SubscriptionRow};
use crate::postgres::{PgRead, PgWrite};
use chrono::{DateTime, Utc};
use orderhub_core::{StoreError, StoreErrorKind};
use orderhub_domain::TenantId;
use postgres::Row;
use uuid::Uuid;

fn bad(what: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        format!("stored {what} does not decode"),
    )
}

fn until(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1))
}

fn lease_row(r: &Row) -> Result<Lease, StoreError> {
    let d = |_| bad("lease");
    Ok(Lease {
        name: r.try_get(0).map_err(d)?,
        holder: r.try_get(1).map_err(d)?,
        fence: r.try_get(2).map_err(d)?,
        expires_at: r.try_get(3).map_err(d)?,
        position: r.try_get(4).map_err(d)?,
        parts: Lease::decode_parts(r.try_get(5).map_err(d)?),
    })
}

/// A `parked_deliveries` row (columns in table order).
fn parked_row(r: &Row) -> Result<ParkedRow, StoreError> {
    Ok(ParkedRow {
        tenant_id: tenant(r.get(0))?,
        target_id: r.get(1),
        event_id: r.get(2),
        event_type: r.get(3),
        aggregate_id: r.get(4),
        seq: r.get(5),
        body: r.get(6),
        attempts: u32::try_from(r.get::<_, i32>(7)).unwrap_or(0),
        last_error: r.get(8),
        next_attempt_at: r.get(9),
        created_at: r.get(10),
    })
}

fn tenant(s: String) -> Result<TenantId, StoreError> {
    TenantId::parse(&s).map_err(|_| bad("tenant id"))
}

impl OpsTx for PgWrite {
    fn lease_acquire(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let until = until(now, ttl);
        // An expired placeholder first, so the row exists to be locked: two processes creating the
        // lease at once then queue on its row lock instead of racing on the insert.
        self.conn.execute(
            "INSERT INTO leases (name, holder, fence, expires_at, position) VALUES ($1, '', 1, 'epoch', 0) ON CONFLICT (name) DO NOTHING",
            &[&name],
        )?;
        let row = self.conn.query_opt(
            "SELECT name, holder, fence, expires_at, position, parts FROM leases WHERE name = $1 FOR UPDATE",
            &[&name],
        )?;
        let Some(l) = row.as_ref().map(lease_row).transpose()? else {
            return Ok(None);
        };
        self.pending.writes += 1;
        if l.holder == holder {
            self.conn.execute(
                "UPDATE leases SET expires_at = $1 WHERE name = $2",
                &[&until, &name],
            )?;
            return Ok(Some(Lease {
                expires_at: until,
                ..l
            }));
        }
        if l.expires_at <= now {
            self.conn.execute(
                "UPDATE leases SET holder = $1, fence = fence + 1, expires_at = $2 WHERE name = $3",
                &[&holder, &until, &name],
            )?;
            return Ok(Some(Lease {
                holder: holder.to_owned(),
                fence: l.fence + 1,
                expires_at: until,
                ..l
            }));
        }
        Ok(None)
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
        let n = self.conn.execute(
            "UPDATE leases SET position = GREATEST(position, $1), expires_at = $2
             WHERE name = $3 AND holder = $4 AND fence = $5",
            &[&position, &until(now, ttl), &name, &holder, &fence],
        )?;
        self.pending.writes += n;
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
        let n = self.conn.execute(
            "UPDATE leases SET position = GREATEST(position, $1), parts = $2, expires_at = $3
             WHERE name = $4 AND holder = $5 AND fence = $6",
            &[
                &position,
                &Lease::encode_parts(parts),
                &until(now, ttl),
                &name,
                &holder,
                &fence,
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn lease_release(&mut self, name: &str, holder: &str, fence: i64) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE leases SET expires_at = 'epoch' WHERE name = $1 AND holder = $2 AND fence = $3",
            &[&name, &holder, &fence],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn subscription_insert(&mut self, s: &SubscriptionRow) -> Result<(), StoreError> {
        let types = serde_json::json!(s.event_types);
        let (url, secret) = crate::ops::columns_of(s);
        let secret = self.cipher.encrypt(&secret);
        let shops: Option<serde_json::Value> = crate::ops::shops_json(s.shops.as_deref())
            .map(|j| serde_json::from_str(&j).unwrap_or_default());
        self.conn.execute(
            "INSERT INTO subscriptions (tenant_id, subscription_id, url, event_types, secret,
                                        description, created_at, shops, format, template)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &s.tenant_id.as_str(),
                &s.subscription_id,
                &url,
                &types,
                &secret,
                &s.description,
                &s.created_at,
                &shops,
                &s.format.as_str(),
                &s.template,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn subscription_delete(&mut self, t: &TenantId, id: Uuid) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM subscriptions WHERE tenant_id = $1 AND subscription_id = $2",
            &[&t.as_str(), &id],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn subscription_set_template(
        &mut self,
        t: &TenantId,
        id: Uuid,
        template: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE subscriptions SET template = $3 WHERE tenant_id = $1 AND subscription_id = $2",
            &[&t.as_str(), &id, &template],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn dead_letter_put(&mut self, d: &DeadLetterRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO dead_letters VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'dead', $11, $11)
             ON CONFLICT (tenant_id, subscription_id, event_id) DO UPDATE
             SET attempts = dead_letters.attempts + excluded.attempts, last_error = excluded.last_error,
                 state = 'dead', updated_at = excluded.updated_at",
            &[
                &d.tenant_id.as_str(),
                &d.dead_letter_id,
                &d.subscription_id,
                &d.event_id,
                &d.event_type,
                &d.aggregate_id,
                &d.seq,
                &d.body,
                &(i32::try_from(d.attempts).unwrap_or(i32::MAX)),
                &d.last_error,
                &d.updated_at,
            ],
        )?;
        self.pending.writes += 1;
        Ok(())
    }

    fn dead_letter_move(
        &mut self,
        t: &TenantId,
        id: Option<Uuid>,
        from: &str,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = self.conn.execute(
            "UPDATE dead_letters SET state = $1, updated_at = $2
             WHERE tenant_id = $3 AND ($4::uuid IS NULL OR dead_letter_id = $4) AND state = $5",
            &[&to, &now, &t.as_str(), &id, &from],
        )?;
        self.pending.writes += n;
        Ok(n)
    }

    fn parked_put(&mut self, p: &ParkedRow) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO parked_deliveries VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (tenant_id, target_id, event_id) DO UPDATE
             SET attempts = excluded.attempts, last_error = excluded.last_error,
                 next_attempt_at = excluded.next_attempt_at
             WHERE excluded.attempts > parked_deliveries.attempts",
            &[
                &p.tenant_id.as_str(),
                &p.target_id,
                &p.event_id,
                &p.event_type,
                &p.aggregate_id,
                &p.seq,
                &p.body,
                &(i32::try_from(p.attempts).unwrap_or(i32::MAX)),
                &p.last_error,
                &p.next_attempt_at,
                &p.created_at,
            ],
        )?;
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
        let n = self.conn.execute(
            "DELETE FROM parked_deliveries WHERE tenant_id = $1 AND target_id = $2 AND event_id = $3",
            &[&tenant.as_str(), &target, &event],
        )?;
        self.pending.writes += n;
        self.parked_lane_has(tenant, target, aggregate)
    }

    fn parked_lane_has(
        &mut self,
        tenant: &TenantId,
        target: Uuid,
        aggregate: Uuid,
    ) -> Result<bool, StoreError> {
        let r = self.conn.query_opt(
            "SELECT 1 FROM parked_deliveries WHERE tenant_id = $1 AND target_id = $2 AND aggregate_id = $3 LIMIT 1",
            &[&tenant.as_str(), &target, &aggregate],
        )?;
        Ok(r.is_some())
    }

    fn parked_take_lane(
        &mut self,
        t: &TenantId,
        target: Uuid,
        aggregate: Uuid,
    ) -> Result<Vec<ParkedRow>, StoreError> {
        let rows = self.conn.query(
            "DELETE FROM parked_deliveries
             WHERE (tenant_id, target_id, event_id) IN (
                 SELECT tenant_id, target_id, event_id FROM parked_deliveries
                 WHERE tenant_id = $1 AND target_id = $2 AND aggregate_id = $3
                 ORDER BY seq LIMIT $4)
             RETURNING tenant_id, target_id, event_id, event_type, aggregate_id, seq, body,
                       attempts, last_error, next_attempt_at, created_at",
            &[
                &t.as_str(),
                &target,
                &aggregate,
                &i64::from(crate::ops::PARKED_DUE_MAX),
            ],
        )?;
        self.pending.writes += rows.len() as u64;
        let mut out = rows
            .iter()
            .map(parked_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }
}

fn dl_row(r: &Row) -> Result<DeadLetterRow, StoreError> {
    Ok(DeadLetterRow {
        tenant_id: tenant(r.get(0))?,
        dead_letter_id: r.get(1),
        subscription_id: r.get(2),
        event_id: r.get(3),
        event_type: r.get(4),
        aggregate_id: r.get(5),
        seq: r.get(6),
        body: r.get(7),
        attempts: u32::try_from(r.get::<_, i32>(8)).unwrap_or(0),
        last_error: r.get(9),
        state: r.get(10),
        created_at: r.get(11),
        updated_at: r.get(12),
    })
}

impl OpsRead for PgRead {
    fn tenants(&mut self) -> Result<Vec<TenantId>, StoreError> {
        let rows = self
            .conn
            .query("SELECT tenant_id FROM tenants ORDER BY tenant_id", &[])?;
        rows.iter().map(|r| tenant(r.get(0))).collect()
    }

    fn outbox_head(&mut self, t: &TenantId) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_opt(
                "SELECT last_seq FROM outbox_heads WHERE tenant_id = $1",
                &[&t.as_str()],
            )?
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0))
    }

    fn leases(&mut self, prefix: &str) -> Result<Vec<Lease>, StoreError> {
        let rows = self.conn.query(
            "SELECT name, holder, fence, expires_at, position, parts FROM leases
             WHERE left(name, length($1)) = $1 ORDER BY name",
            &[&prefix],
        )?;
        rows.iter().map(lease_row).collect()
    }

    fn subscriptions(&mut self, t: Option<&TenantId>) -> Result<Vec<SubscriptionRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, subscription_id, url, event_types, secret, description, created_at, shops,
                    format, template
             FROM subscriptions WHERE $1::text IS NULL OR tenant_id = $1
             ORDER BY tenant_id, subscription_id",
            &[&t.map(|t| t.as_str())],
        )?;
        rows.iter()
            .map(|r| {
                let types: serde_json::Value = r.get(3);
                let secret: String = r.get(4);
                let format = crate::ops::SubscriptionFormat::parse(r.get::<_, &str>(8))
                    .ok_or_else(|| bad("subscription format"))?;
                let secret = self
                    .cipher
                    .decrypt(&secret)
                    .map_err(|_| bad("subscription secret"))?;
                let (url, secret) = crate::ops::from_columns(format, r.get(2), secret)?;
                Ok(SubscriptionRow {
                    tenant_id: tenant(r.get(0))?,
                    subscription_id: r.get(1),
                    url,
                    event_types: serde_json::from_value(types).map_err(|_| bad("event types"))?,
                    secret,
                    description: r.get(5),
                    created_at: r.get(6),
                    shops: crate::ops::shops_from_json(
                        r.get::<_, Option<serde_json::Value>>(7)
                            .map(|v| v.to_string())
                            .as_deref(),
                    )?,
                    format,
                    template: r.get(9),
                })
            })
            .collect()
    }

    fn dead_letters(
        &mut self,
        t: Option<&TenantId>,
        state: Option<&str>,
        after: Option<Uuid>,
        limit: u32,
        subscriptions: Option<&[Uuid]>,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        let subs: Option<Vec<Uuid>> = subscriptions.map(<[Uuid]>::to_vec);
        let rows = self.conn.query(
            "SELECT tenant_id, dead_letter_id, subscription_id, event_id, event_type, aggregate_id, seq,
                    body, attempts, last_error, state, created_at, updated_at
             FROM dead_letters
             WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR state = $2)
               AND ($3::uuid IS NULL OR dead_letter_id > $3)
               AND ($5::uuid[] IS NULL OR subscription_id = ANY($5))
             ORDER BY dead_letter_id LIMIT $4",
            &[
                &t.map(|t| t.as_str()),
                &state,
                &after,
                &i64::from(limit),
                &subs,
            ],
        )?;
        rows.iter().map(dl_row).collect()
    }

    fn dead_letter(&mut self, t: &TenantId, id: Uuid) -> Result<Option<DeadLetterRow>, StoreError> {
        self.conn
            .query_opt(
                "SELECT tenant_id, dead_letter_id, subscription_id, event_id, event_type, aggregate_id, seq,
                        body, attempts, last_error, state, created_at, updated_at
                 FROM dead_letters WHERE tenant_id = $1 AND dead_letter_id = $2",
                &[&t.as_str(), &id],
            )?
            .as_ref()
            .map(dl_row)
            .transpose()
    }

    fn dead_letter_depth(&mut self) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, count(*) FROM dead_letters WHERE state <> 'delivered' GROUP BY tenant_id",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((tenant(r.get(0))?, r.get::<_, i64>(1) as u64)))
            .collect()
    }

    fn parked_due(
        &mut self,
        t: &TenantId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ParkedRow>, StoreError> {
        let rows = self.conn.query(
            "SELECT p.tenant_id, p.target_id, p.event_id, p.event_type, p.aggregate_id, p.seq, p.body,
                    p.attempts, p.last_error, p.next_attempt_at, p.created_at
             FROM parked_deliveries p
             WHERE p.tenant_id = $1 AND p.next_attempt_at <= $2
               AND NOT EXISTS (SELECT 1 FROM parked_deliveries e
                               WHERE e.tenant_id = p.tenant_id AND e.target_id = p.target_id
                                 AND e.aggregate_id = p.aggregate_id AND e.seq < p.seq)
             ORDER BY p.next_attempt_at LIMIT $3",
            &[&t.as_str(), &now, &i64::from(limit)],
        )?;
        rows.iter().map(parked_row).collect()
    }

    fn parked_lanes(&mut self, t: &TenantId) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let rows = self.conn.query(
            "SELECT DISTINCT target_id, aggregate_id FROM parked_deliveries WHERE tenant_id = $1",
            &[&t.as_str()],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn parked_depth(&mut self) -> Result<Vec<(TenantId, u64)>, StoreError> {
        let rows = self.conn.query(
            "SELECT tenant_id, count(*) FROM parked_deliveries GROUP BY tenant_id",
            &[],
        )?;
        rows.iter()
            .map(|r| Ok((tenant(r.get(0))?, r.get::<_, i64>(1) as u64)))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Channel intake

use crate::ops::{
    ChannelMessageRow, ChannelRead, ChannelRefusals, ChannelShopRow, ChannelTx, ShopToken,
    open_sealed, seal,
};

impl ChannelTx for PgWrite {
    fn channel_refusal_admit(
        &mut self,
        tenant: &TenantId,
        channel: &str,
        shop_id: &str,
        cap: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let r = self.conn.query_opt(
            "INSERT INTO channel_refusals AS r
             VALUES ($1, $2, $3, least(1, $4::bigint), 1 - least(1, $4::bigint), $4::bigint > 0, $5)
             ON CONFLICT (tenant_id, channel, shop_id) DO UPDATE SET
                 kept = r.kept + CASE WHEN r.kept < $4::bigint THEN 1 ELSE 0 END,
                 dropped = r.dropped + CASE WHEN r.kept < $4::bigint THEN 0 ELSE 1 END,
                 last_kept = r.kept < $4::bigint, last_at = $5
             RETURNING last_kept",
            &[&tenant.as_str(), &channel, &shop_id, &cap, &now],
        )?;
        self.pending.writes += 1;
        Ok(r.is_some_and(|r| r.get(0)))
    }

    fn channel_shop_put(&mut self, s: &ChannelShopRow) -> Result<(), StoreError> {
        let (secret, token, mkey, refresh, app_secret) = (
            self.cipher.encrypt(&s.secret),
            self.cipher.encrypt(&s.access_token),
            self.cipher.encrypt(&s.message_key),
            self.cipher.encrypt(&s.token.refresh_token),
            self.cipher.encrypt(&s.token.app_secret),
        );
        let n = self.conn.execute(
            "INSERT INTO channel_shops (channel, shop_id, tenant_id, app_key, secret,
               access_token, message_key, api_base_url, created_at, mapping, refresh_token,
               token_expires_at, refresh_expires_at, token_problem, token_version, token_secret)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, 1, $14)
             ON CONFLICT (tenant_id, channel, shop_id) DO UPDATE SET app_key = excluded.app_key,
               secret = excluded.secret, access_token = excluded.access_token,
               message_key = excluded.message_key, api_base_url = excluded.api_base_url,
               mapping = excluded.mapping, refresh_token = excluded.refresh_token,
               token_expires_at = excluded.token_expires_at,
               refresh_expires_at = excluded.refresh_expires_at, token_problem = NULL,
               token_version = channel_shops.token_version + 1,
               token_secret = excluded.token_secret",
            &[
                &s.channel,
                &s.shop_id,
                &s.tenant_id.as_str(),
                &s.app_key,
                &secret,
                &token,
                &mkey,
                &s.api_base_url,
                &s.created_at,
                &s.mapping,
                &refresh,
                &s.token.expires_at,
                &s.token.refresh_expires_at,
                &app_secret,
            ],
        )?;
        self.pending.writes += n;
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
        let (token, refresh) = (
            self.cipher.encrypt(access_token),
            self.cipher.encrypt(&t.refresh_token),
        );
        let n = self.conn.execute(
            "UPDATE channel_shops SET access_token = $1, refresh_token = $2,
               token_expires_at = $3, refresh_expires_at = $4, token_problem = $5,
               token_version = $6
             WHERE channel = $7 AND shop_id = $8 AND token_version = $9 AND tenant_id = $10",
            &[
                &token,
                &refresh,
                &t.expires_at,
                &t.refresh_expires_at,
                &t.problem,
                &t.version,
                &channel,
                &shop_id,
                &from,
                &tenant.as_str(),
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn channel_message_insert(&mut self, m: &ChannelMessageRow) -> Result<bool, StoreError> {
        let headers = serde_json::json!(m.headers);
        let body = seal(&self.cipher, &m.body);
        let n = self.conn.execute(
            "INSERT INTO channel_messages VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (tenant_id, channel, shop_id, dedup_key) DO NOTHING",
            &[
                &m.tenant_id.as_str(),
                &m.message_id,
                &m.channel,
                &m.shop_id,
                &m.dedup_key,
                &m.received_at,
                &headers,
                &body,
                &m.state,
                &m.rule,
                &m.field,
                &m.reason,
                &(i32::try_from(m.attempts).unwrap_or(i32::MAX)),
                &m.processed_at,
            ],
        )?;
        self.pending.writes += n;
        Ok(n == 1)
    }

    fn channel_message_update(
        &mut self,
        t: &TenantId,
        id: Uuid,
        state: &str,
        rule: Option<&str>,
        field: Option<&str>,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE channel_messages SET state = $1, rule = $2, field = $3, reason = $4,
               attempts = attempts + 1, processed_at = $5
             WHERE tenant_id = $6 AND message_id = $7",
            &[&state, &rule, &field, &reason, &now, &t.as_str(), &id],
        )?;
        self.pending.writes += n;
        Ok(())
    }

    fn channel_messages_requeue(
        &mut self,
        t: &TenantId,
        channel: &str,
        shop_id: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let n = self.conn.execute(
            "UPDATE channel_messages SET state = 'pending', attempts = 0
             WHERE tenant_id = $1 AND channel = $2 AND shop_id = $3 AND received_at >= $4
               AND dedup_key NOT LIKE 'pull-refused:%' AND dedup_key NOT LIKE 'rejected:%'",
            &[&t.as_str(), &channel, &shop_id, &since],
        )?;
        self.pending.writes += n;
        Ok(n)
    }

    fn channel_messages_retry_failed(
        &mut self,
        t: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<u64, StoreError> {
        let n = self.conn.execute(
            "UPDATE channel_messages SET state = 'pending', attempts = 0
             WHERE tenant_id = $1 AND state = 'failed' AND channel = $2 AND shop_id = $3",
            &[&t.as_str(), &channel, &shop_id],
        )?;
        self.pending.writes += n;
        Ok(n)
    }
}

impl ChannelRead for PgRead {
    fn channel_refusals(&mut self, tenant: &TenantId) -> Result<Vec<ChannelRefusals>, StoreError> {
        let rows = self.conn.query(
            "SELECT channel, shop_id, kept, dropped, last_at FROM channel_refusals
             WHERE tenant_id = $1 ORDER BY channel, shop_id",
            &[&tenant.as_str()],
        )?;
        Ok(rows
            .iter()
            .map(|r| ChannelRefusals {
                channel: r.get(0),
                shop_id: r.get(1),
                kept: r.get::<_, i64>(2) as u64,
                dropped: r.get::<_, i64>(3) as u64,
                last_at: r.get(4),
            })
            .collect())
    }

    fn channel_shops_all(&mut self) -> Result<Vec<ChannelShopRow>, StoreError> {
        let keys: Vec<(String, String, String)> = self
            .conn
            .query(
                "SELECT tenant_id, channel, shop_id FROM channel_shops ORDER BY tenant_id, channel, shop_id",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        crate::ops::shops_of(self, keys)
    }

    fn channel_shops_named(
        &mut self,
        channel: &str,
        shop_id: &str,
    ) -> Result<Vec<ChannelShopRow>, StoreError> {
        let keys: Vec<(String, String, String)> = self
            .conn
            .query(
                "SELECT tenant_id, channel, shop_id FROM channel_shops
                 WHERE channel = $1 AND shop_id = $2 ORDER BY tenant_id",
                &[&channel, &shop_id],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        crate::ops::shops_of(self, keys)
    }

    fn channel_shop(
        &mut self,
        tenant_id: &TenantId,
        channel: &str,
        shop_id: &str,
    ) -> Result<Option<ChannelShopRow>, StoreError> {
        let Some(r) = self.conn.query_opt(
            "SELECT tenant_id, app_key, secret, access_token, message_key, api_base_url, created_at,
               mapping, refresh_token, token_expires_at, refresh_expires_at, token_problem,
               token_version, token_secret
             FROM channel_shops WHERE tenant_id = $3 AND channel = $1 AND shop_id = $2",
            &[&channel, &shop_id, &tenant_id.as_str()],
        )?
        else {
            return Ok(None);
        };
        // An empty text is an empty secret: token columns of rows written before tokens were kept
        // (migration 0008) hold '' rather than a sealed value; every written secret is sealed.
        let dec = |i: usize| match r.get::<_, String>(i) {
            s if s.is_empty() => Ok(String::new()),
            s => self.cipher.decrypt(&s).map_err(|_| bad("shop secret")),
        };
        Ok(Some(ChannelShopRow {
            channel: channel.to_owned(),
            shop_id: shop_id.to_owned(),
            tenant_id: tenant(r.get(0))?,
            app_key: r.get(1),
            secret: dec(2)?,
            access_token: dec(3)?,
            message_key: dec(4)?,
            api_base_url: r.get(5),
            created_at: r.get(6),
            mapping: r.get(7),
            token: ShopToken {
                refresh_token: dec(8)?,
                app_secret: dec(13)?,
                expires_at: r.get(9),
                refresh_expires_at: r.get(10),
                problem: r.get(11),
                version: r.get(12),
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
        // Only the conditions given, so each shape has its index (with catch-all `$1 IS NULL OR …`
        // conditions the generic plan scanned the table).
        let mut sql = String::from(
            "SELECT tenant_id, message_id, channel, shop_id, dedup_key, received_at, headers, body, state,
                    rule, field, reason, attempts, processed_at
             FROM channel_messages WHERE true",
        );
        let limit = i64::from(limit);
        let tenant_id = t.map(|t| t.as_str());
        let mut p: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(t) = &tenant_id {
            p.push(t);
            sql.push_str(&format!(" AND tenant_id = ${}", p.len()));
        }
        if let Some(s) = state {
            let Some(c) = crate::ops::message_state_condition(s) else {
                return Ok(vec![]);
            };
            sql.push_str(" AND ");
            sql.push_str(&c);
        }
        if let Some(a) = &after {
            p.push(a);
            sql.push_str(&format!(" AND message_id > ${}", p.len()));
        }
        let shops: Option<Vec<String>> = shops.map(<[String]>::to_vec);
        if let Some(s) = &shops {
            p.push(s);
            sql.push_str(&format!(" AND shop_id = ANY(${})", p.len()));
        }
        p.push(&limit);
        sql.push_str(&format!(" ORDER BY message_id LIMIT ${}", p.len()));
        let stmt = self.conn.stmt_dyn(&sql)?;
        let rows = self.conn.c.query(&stmt, &p).map_err(crate::postgres::err)?;
        rows.iter()
            .map(|r| {
                let headers: serde_json::Value = r.get(6);
                let body: String = r.get(7);
                Ok(ChannelMessageRow {
                    tenant_id: tenant(r.get(0))?,
                    message_id: r.get(1),
                    channel: r.get(2),
                    shop_id: r.get(3),
                    dedup_key: r.get(4),
                    received_at: r.get(5),
                    headers: serde_json::from_value(headers).map_err(|_| bad("headers"))?,
                    body: open_sealed(&self.cipher, &body)?,
                    state: r.get(8),
                    rule: r.get(9),
                    field: r.get(10),
                    reason: r.get(11),
                    attempts: u32::try_from(r.get::<_, i32>(12)).unwrap_or(0),
                    processed_at: r.get(13),
                })
            })
            .collect()
    }
}
