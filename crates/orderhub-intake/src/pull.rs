//! Incremental pull, per shop: orders modified since the shop's cursor (minus an overlap window, so
//! an order modified while the last pull ran is not missed), page by page, within the channel's
//! rate limit (a token bucket per app and shop), backing off on the channel's throttling error.
//! The cursor lives in the database (the lease `pull/<tenant>/<channel>/<shop>`, so one process pulls a shop
//! at a time and a restart resumes from it). Pages are kept raw like pushes; orders are merged like
//! pushed ones, so the same order by push and by pull, twice or out of order, is one order.

use crate::process::facts;
use chrono::{DateTime, FixedOffset, Utc};
use orderhub_channels::{ApiError, ChannelKind, ListQuery};
use orderhub_core::intake::{Ingested, ingest};
use orderhub_domain::ShopId;
use orderhub_store::ops::{MSG_PROCESSED, MSG_REJECTED};
use orderhub_store::{ChannelMessageRow, ChannelShopRow, Lease, Store};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct PullConfig {
    /// How often a shop is pulled (issue 4: at most 60 s).
    pub interval: Duration,
    /// Each window starts this long before the cursor.
    pub overlap: Duration,
    /// How far back the first pull of a shop reaches.
    pub first_window: Duration,
    pub page_size: u32,
    /// The channel's limit for this app and shop, in requests per second.
    pub rate_per_sec: f64,
    /// Requests that may go at once after a quiet spell.
    pub burst: f64,
    /// Throttling answers in a row before the window is given up (the cursor stays).
    pub throttled_max: u32,
    /// Which addresses the pulls may reach. The default lets every address through (tests,
    /// tools); `orderhub serve` refuses private ones unless told otherwise.
    pub outbound: orderhub_core::outbound::OutboundPolicy,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            interval: Duration::from_secs(30),
            overlap: Duration::from_secs(300),
            first_window: Duration::from_secs(24 * 3600),
            page_size: 100,
            rate_per_sec: 10.0,
            burst: 1.0,
            throttled_max: 20,
            outbound: orderhub_core::outbound::OutboundPolicy::ALLOW_PRIVATE,
        }
    }
}

/// A token bucket: `take` waits until a request may go.
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(rate: f64, burst: f64) -> Bucket {
        Bucket {
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            at: Instant::now(),
        }
    }

    /// The channel said we are too fast: halve the pace (it creeps back as the window goes on).
    pub fn slow_down(&mut self) {
        self.rate = (self.rate / 2.0).max(0.5);
        self.tokens = self.tokens.min(0.0);
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub async fn take(&mut self) {
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate)
                .min(self.burst);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64((1.0 - self.tokens) / self.rate)).await;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullReport {
    pub pages: u32,
    pub orders: u64,
    pub created: u64,
    pub updated: u64,
    pub stale: u64,
    pub rejected: u64,
    pub throttled: u32,
    /// Time spent waiting for the channel's answers (including rate-limit waits) and merging.
    pub fetch_ms: u64,
    pub merge_ms: u64,
}

fn cn(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    // Channels in China answer in Beijing time; the offset is kept on the order.
    t.with_timezone(
        &FixedOffset::east_opt(8 * 3600)
            .unwrap_or_else(|| FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!())),
    )
}

/// The lease that holds a shop's pull cursor: `pull/<tenant>/<channel>/<shop>`.
pub fn lease_name(tenant: &orderhub_domain::TenantId, channel: &str, shop_id: &str) -> String {
    format!("pull/{tenant}/{channel}/{shop_id}")
}

/// The cursor in a lease position: milliseconds since the epoch.
pub fn cursor_of(lease: &Lease) -> Option<DateTime<Utc>> {
    (lease.position > 0)
        .then(|| DateTime::from_timestamp_millis(lease.position))
        .flatten()
}

/// Pages whose merge may still run while the next page is fetched. One was too few: a page's
/// merge (its raw answer kept, its orders merged, each write answered after its sync) took about as
/// long as the fetch of the next page at the rate limit, and the pull waited for both in turn —
/// measured with `bench channels --pull-orders 100000` on a slow day: 14.9 s fetching + 13.8 s
/// merging = 149% of the time the limit allows.
const MERGES_AHEAD: usize = 4;

/// Pulls one window `[cursor − overlap, now]` of one shop and returns what it did; the caller
/// advances the cursor to `to` once this returns `Ok`.
pub async fn pull_window(
    store: &Store,
    http: &orderhub_channels::client::HttpClient,
    shop: &ChannelShopRow,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cfg: &PullConfig,
    bucket: &mut Bucket,
) -> Result<PullReport, ApiError> {
    let kind = ChannelKind::parse(&shop.channel).map_err(|e| ApiError::Transport(e.to_string()))?;
    let adapter = crate::adapter_for(shop).map_err(ApiError::Transport)?;
    let shop_id = ShopId::parse(&shop.shop_id).map_err(|e| ApiError::Transport(e.to_string()))?;
    let mut caller = Caller {
        store,
        http,
        shop,
        adapter: adapter.as_ref(),
        cfg,
        kind,
        creds: crate::tokens::fresh(store, http, shop, adapter.as_ref()).await?,
        refusals: 0,
    };
    let mut report = PullReport::default();
    let mut q = ListQuery {
        modified_from: cn(from),
        modified_to: cn(to),
        page: 1,
        page_size: cfg.page_size,
        cursor: None,
    };
    let mut seen = 0u64;
    let mut merging: std::collections::VecDeque<
        tokio::task::JoinHandle<Vec<Result<Ingested, orderhub_core::CoreError>>>,
    > = std::collections::VecDeque::new();
    loop {
        let fetch_started = Instant::now();
        let (body, page) = caller
            .call(
                bucket,
                &mut report,
                |c| adapter.list_request(&q, c, Utc::now()),
                |b| refusal_apart(adapter.parse_list(b)),
            )
            .await?;
        // A page the adapter refuses (one of its orders does not map) is recorded like a refused
        // push, and the window fails as before (the cursor stays: its other orders are not lost).
        let page = match page {
            Ok(p) => p,
            Err(rej) => {
                let key = refusal_key(&[
                    "page",
                    rej.rule,
                    rej.field.as_deref().unwrap_or(""),
                    &rej.message,
                ]);
                record_refusal(store, shop, &body, key, &rej).await;
                return Err(ApiError::Rejected(rej));
            }
        };
        report.fetch_ms += fetch_started.elapsed().as_millis() as u64;
        let merge_started = Instant::now();
        report.pages += 1;
        // Kept raw, like a push (a later mapping fix can derive the orders again).
        let raw = ChannelMessageRow {
            tenant_id: shop.tenant_id.clone(),
            message_id: uuid::Uuid::now_v7(),
            channel: shop.channel.clone(),
            shop_id: shop.shop_id.clone(),
            dedup_key: {
                use sha2::Digest;
                format!("pull:sha256:{}", hex::encode(sha2::Sha256::digest(&body)))
            },
            received_at: Utc::now(),
            headers: vec![("x-orderhub-source".into(), "pull".into())],
            body: body.to_vec(),
            state: MSG_PROCESSED.into(),
            rule: None,
            field: None,
            reason: None,
            attempts: 1,
            processed_at: Some(Utc::now()),
        };
        let st = store.clone();
        let keep_raw = async move {
            // A failure to keep the raw page loses only the replay of its orders; the orders
            // themselves are merged below all the same.
            let _ = st
                .write(0, move |tx| Ok(tx.channel_message_insert(&raw)?))
                .await;
        };
        // Each order with the answer that carried it (kept with its refusal, if any).
        let mut orders: Vec<(orderhub_channels::ChannelOrder, bytes::Bytes)> =
            page.orders.into_iter().map(|o| (o, body.clone())).collect();
        for id in &page.order_ids {
            let (detail, order) = caller
                .call(
                    bucket,
                    &mut report,
                    |c| adapter.detail_request(id, c, Utc::now()),
                    |b| refusal_apart(adapter.parse_detail(b)),
                )
                .await?;
            match order {
                Ok(o) => orders.push((o, detail)),
                Err(rej) => {
                    // One order's detail that does not map: recorded, and the others go on.
                    seen += 1;
                    report.orders += 1;
                    report.rejected += 1;
                    let key = refusal_key(&[
                        "detail",
                        id,
                        rej.rule,
                        rej.field.as_deref().unwrap_or(""),
                        &rej.message,
                    ]);
                    record_refusal(store, shop, &detail, key, &rej).await;
                }
            }
        }
        seen += orders.len() as u64;
        report.orders += orders.len() as u64;
        // One job per order, all sent at once: the writer commits them in one group. The merge of
        // this page (and the keeping of its raw answer) runs while the next pages are fetched, at
        // most MERGES_AHEAD pages behind.
        let mut jobs = Vec::with_capacity(orders.len());
        for (o, answer) in &orders {
            let draft = match o.to_draft(&shop_id) {
                Ok(d) => d,
                Err(rej) => {
                    report.rejected += 1;
                    record_refusal(store, shop, answer, order_refusal_key(o, &rej), &rej).await;
                    continue;
                }
            };
            let f = facts(o);
            let a = crate::process::actor(&shop.tenant_id);
            let part = crate::process::partition(shop_id.as_str(), &o.external_order_id);
            let st = store.clone();
            let (shop, answer) = (shop.clone(), answer.clone());
            let key_of = {
                let o = o.clone();
                move |rej: &orderhub_channels::Rejected| order_refusal_key(&o, rej)
            };
            jobs.push(async move {
                let r = st
                    .write(part, move |tx| {
                        ingest(tx, &a, draft.clone(), &f, Utc::now())
                    })
                    .await;
                // The domain's refusal of a pulled order (its amounts do not add up, …) is
                // recorded like a push's.
                if let Err(orderhub_core::CoreError::Validation(v)) = &r {
                    let rej = orderhub_channels::Rejected {
                        rule: v.rule,
                        field: Some(v.field.clone()),
                        message: v.message.clone(),
                    };
                    record_refusal(&st, &shop, &answer, key_of(&rej), &rej).await;
                }
                r
            });
        }
        while merging.len() >= MERGES_AHEAD {
            if let Some(prev) = merging.pop_front() {
                absorb(&mut report, prev.await);
            }
        }
        merging.push_back(tokio::spawn(async move {
            futures::future::join(keep_raw, futures::future::join_all(jobs))
                .await
                .1
        }));
        report.merge_ms += merge_started.elapsed().as_millis() as u64;
        if !page.has_next || page.total.is_some_and(|t| seen >= t) {
            for prev in merging {
                absorb(&mut report, prev.await);
            }
            return Ok(report);
        }
        q.page += 1;
        q.cursor = page.next_cursor;
    }
}

/// Splits the adapter's refusal of an answer's content from the errors of the call itself (which
/// the caller handles: a refused token is renewed, anything else ends the window).
fn refusal_apart<T>(
    r: Result<T, ApiError>,
) -> Result<Result<T, orderhub_channels::Rejected>, ApiError> {
    match r {
        Ok(t) => Ok(Ok(t)),
        Err(ApiError::Rejected(rej)) => Ok(Err(rej)),
        Err(e) => Err(e),
    }
}

/// The dedup key of a refusal: the same bad order pulled again (every interval, and again in the
/// next window's overlap) is one record; a new version of it (another modified time) or another
/// refusal is another.
fn refusal_key(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("pull-refused:sha256:{}", hex::encode(h.finalize()))
}

fn order_refusal_key(
    o: &orderhub_channels::ChannelOrder,
    rej: &orderhub_channels::Rejected,
) -> String {
    refusal_key(&[
        "order",
        &o.external_order_id,
        &o.modified_at.to_rfc3339(),
        &o.channel_status,
        rej.rule,
        rej.field.as_deref().unwrap_or(""),
    ])
}

/// Longest refusal reason kept, as for pushes.
const REASON_CHARS_MAX: usize = 200;

/// Records a pulled order the hub refused as a rejected channel message (`GET
/// /v1/channel-messages`), like a push's refusal: its rule, field and reason, and the channel's
/// answer that carried it as the body (sealed at rest by the store, like every message body).
/// A failure to record loses only the record: the pull goes on.
async fn record_refusal(
    store: &Store,
    shop: &ChannelShopRow,
    answer: &[u8],
    dedup_key: String,
    rej: &orderhub_channels::Rejected,
) {
    use sha2::Digest;
    let now = Utc::now();
    let mut reason: String = rej.message.chars().take(REASON_CHARS_MAX).collect();
    // A list page can be large: beyond the bound its digest and length stand for it, as for a
    // push refused before it was authenticated.
    let body = if answer.len() <= PULL_ANSWER_KEPT_MAX {
        answer.to_vec()
    } else {
        reason.push_str(&format!(
            " (answer not kept: {} bytes, sha256 {})",
            answer.len(),
            hex::encode(sha2::Sha256::digest(answer))
        ));
        Vec::new()
    };
    let row = ChannelMessageRow {
        tenant_id: shop.tenant_id.clone(),
        message_id: uuid::Uuid::now_v7(),
        channel: shop.channel.clone(),
        shop_id: shop.shop_id.clone(),
        dedup_key,
        received_at: now,
        headers: vec![("x-orderhub-source".into(), "pull".into())],
        body,
        state: MSG_REJECTED.into(),
        rule: Some(rej.rule.to_owned()),
        field: rej.field.clone(),
        reason: Some(reason),
        attempts: 1,
        processed_at: Some(now),
    };
    let channel = shop.channel.clone();
    // Recorded once per order version (the dedup key), and within the shop's share of refusal
    // records (`crate::REFUSED_KEPT_MAX`, shared with refused pushes): a new record beyond it is
    // taken back, and only counted.
    let r = store
        .write(0, move |tx| {
            if !tx.channel_message_insert(&row)? {
                return Ok(false);
            }
            if !tx.channel_refusal_admit(
                &row.tenant_id,
                &row.channel,
                &row.shop_id,
                crate::REFUSED_KEPT_MAX,
                now,
            )? {
                // Undoes this job's insert (a refused job's writes are rolled back alone).
                return Err(orderhub_core::CoreError::Validation(
                    orderhub_domain::ValidationError::new(
                        "shop_id",
                        "refusals_full",
                        "the shop's refusal records are full",
                    ),
                ));
            }
            Ok(true)
        })
        .await;
    match r {
        Ok(true) => {
            metrics::counter!("orderhub_channel_messages_total", "channel" => channel, "outcome" => "rejected").increment(1);
        }
        Ok(false) => {}
        Err(orderhub_core::CoreError::Validation(_)) => {
            metrics::counter!("orderhub_channel_refusals_dropped_total", "channel" => channel, "source" => "pull").increment(1);
        }
        Err(e) => {
            tracing::warn!(shop = %shop.shop_id, channel = %shop.channel, error = %e, "A refused pulled order could not be recorded.")
        }
    }
}

/// The largest channel answer kept with a refused pulled order (a detail answer is a few KB; a
/// list page of 100 orders can be hundreds).
pub const PULL_ANSWER_KEPT_MAX: usize = 64 * 1024;

/// One window's calls to the channel: within the rate limit ([`fetch`]), with the window's
/// credentials, sent again with other ones when the channel refuses the token
/// ([`crate::tokens::after_refusal`], [`crate::tokens::REFUSALS_MAX`] times per window; one more
/// ends the window).
struct Caller<'a> {
    store: &'a Store,
    http: &'a orderhub_channels::client::HttpClient,
    shop: &'a ChannelShopRow,
    adapter: &'a dyn orderhub_channels::Channel,
    cfg: &'a PullConfig,
    kind: ChannelKind,
    creds: orderhub_channels::ShopCredentials,
    refusals: u32,
}

impl Caller<'_> {
    /// The answer to the call `build` makes, and what `read` made of it.
    async fn call<T>(
        &mut self,
        bucket: &mut Bucket,
        report: &mut PullReport,
        build: impl Fn(&orderhub_channels::ShopCredentials) -> orderhub_channels::ApiRequest,
        read: impl Fn(&[u8]) -> Result<T, ApiError>,
    ) -> Result<(bytes::Bytes, T), ApiError> {
        loop {
            let req = build(&self.creds);
            let body = fetch(
                self.http,
                self.adapter,
                &self.shop.api_base_url,
                &req,
                bucket,
                self.cfg,
                report,
                self.kind,
            )
            .await?;
            match read(&body) {
                Err(ApiError::Auth { .. }) if self.refusals < crate::tokens::REFUSALS_MAX => {
                    self.refusals += 1;
                    self.creds = crate::tokens::after_refusal(
                        self.store,
                        self.http,
                        self.shop,
                        self.adapter,
                        &self.creds.access_token,
                    )
                    .await?;
                }
                r => return r.map(|t| (body, t)),
            }
        }
    }
}

fn absorb(
    report: &mut PullReport,
    done: Result<Vec<Result<Ingested, orderhub_core::CoreError>>, tokio::task::JoinError>,
) {
    for r in done.unwrap_or_default() {
        match r {
            Ok(Ingested::Created(_)) => report.created += 1,
            Ok(Ingested::Updated(_)) => report.updated += 1,
            Ok(Ingested::Stale(_)) => report.stale += 1,
            Err(_) => report.rejected += 1,
        }
    }
}

/// One request within the rate limit; the channel's throttling answer is backed off from (doubling
/// from 100 ms, at most 5 s, and the pace halved) and the request sent again.
#[allow(clippy::too_many_arguments)]
async fn fetch(
    http: &orderhub_channels::client::HttpClient,
    adapter: &dyn orderhub_channels::Channel,
    base: &str,
    req: &orderhub_channels::ApiRequest,
    bucket: &mut Bucket,
    cfg: &PullConfig,
    report: &mut PullReport,
    kind: ChannelKind,
) -> Result<bytes::Bytes, ApiError> {
    let mut in_a_row = 0u32;
    loop {
        bucket.take().await;
        let (_, body) = http.send(base, req).await?;
        if !matches!(adapter.api_error(&body), Some(ApiError::Throttled { .. })) {
            return Ok(body);
        }
        report.throttled += 1;
        in_a_row += 1;
        metrics::counter!("orderhub_channel_throttled_total", "channel" => kind.code())
            .increment(1);
        if in_a_row >= cfg.throttled_max {
            return Err(ApiError::Throttled {
                code: "too many in a row".into(),
            });
        }
        bucket.slow_down();
        let pause = Duration::from_millis(100 << in_a_row.min(6)).min(Duration::from_secs(5));
        tokio::time::sleep(pause).await;
    }
}

/// Pulls every configured shop whose lease this process holds, every `interval`, until `stop`.
pub async fn run(store: Store, cfg: PullConfig, mut stop: tokio::sync::watch::Receiver<bool>) {
    let http = crate::channel_client(cfg.outbound);
    let holder = format!("puller-{}", uuid::Uuid::new_v4().simple());
    let mut buckets: std::collections::HashMap<String, Bucket> = Default::default();
    loop {
        let shops = store
            .read(|r| r.channel_shops_all())
            .await
            .unwrap_or_default();
        for shop in shops {
            // A shop whose token renewal the channel refused waits for its seller (and a new
            // configuration): no call would be taken.
            if shop.token.problem.is_some() {
                tracing::debug!(shop = %shop.shop_id, channel = %shop.channel, "Not pulled: the shop must authorize the app again.");
                continue;
            }
            let name = lease_name(&shop.tenant_id, &shop.channel, &shop.shop_id);
            let ttl = cfg.interval * 3;
            let lease = {
                let (n, h) = (name.clone(), holder.clone());
                match store
                    .write_alone(0, move |tx| {
                        Ok(tx.lease_acquire(&n, &h, Utc::now(), ttl)?)
                    })
                    .await
                {
                    Ok(Some(l)) => l,
                    _ => continue,
                }
            };
            let now = Utc::now();
            let due = cursor_of(&lease).is_none_or(|c| {
                now - c >= chrono::Duration::from_std(cfg.interval).unwrap_or_default()
            });
            if !due {
                continue;
            }
            let from = cursor_of(&lease)
                .map(|c| c - chrono::Duration::from_std(cfg.overlap).unwrap_or_default())
                .unwrap_or_else(|| {
                    now - chrono::Duration::from_std(cfg.first_window).unwrap_or_default()
                });
            let bucket = buckets
                .entry(name.clone())
                .or_insert_with(|| Bucket::new(cfg.rate_per_sec, cfg.burst));
            match pull_window(&store, &http, &shop, from, now, &cfg, bucket).await {
                Ok(r) => {
                    tracing::debug!(shop = %shop.shop_id, channel = %shop.channel, orders = r.orders, pages = r.pages, "Pulled a window.");
                    let l = lease.clone();
                    let pos = now.timestamp_millis();
                    let _ = store
                        .write_alone(0, move |tx| {
                            Ok(tx.lease_advance(
                                &l.name,
                                &l.holder,
                                l.fence,
                                pos,
                                Utc::now(),
                                ttl,
                            )?)
                        })
                        .await;
                }
                Err(e) => {
                    tracing::warn!(shop = %shop.shop_id, channel = %shop.channel, error = %e, "A pull failed; the cursor stays and the window is pulled again.")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval.min(Duration::from_secs(5))) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
