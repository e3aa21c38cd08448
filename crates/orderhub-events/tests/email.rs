//! E-mail subscriptions (issue 24) against a simulated SMTP server that speaks the protocol's
//! commands and replies as RFC 5321 gives them (220 greeting, EHLO's 250 lines, MAIL FROM, RCPT
//! TO, DATA with 354 and the dot line, QUIT with 221) and keeps what it accepted. The server
//! defers the first mail with a 451 (a transient reply: the delivery is tried again and the mail
//! arrives once) and refuses an unknown recipient with 550 (permanent: dead-lettered with the
//! server's answer, never tried again).

mod harness;

use chrono::Utc;
use orderhub_domain::TenantId;
use orderhub_domain::event_types::ORDER_CREATED;
use orderhub_store::{Store, SubscriptionFormat, SubscriptionRow};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

/// One mail the server accepted.
#[derive(Debug, Clone)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
}

#[derive(Default)]
struct Smtp {
    accepted: Mutex<Vec<Mail>>,
    /// MAIL FROM commands seen from [`DEFERRED`] (each attempt of its deliveries).
    mail_commands: Mutex<u32>,
    /// Every reply code the server sent after a command.
    replies: Mutex<Vec<u16>>,
}

const UNKNOWN: &str = "nobody@shop.cn";
/// The sender whose first mail the server defers.
const DEFERRED: &str = "orderhub@shop.cn";

async fn session(stream: tokio::net::TcpStream, smtp: Arc<Smtp>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 sim.smtp ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &str = if upper.starts_with("EHLO") {
            "250-sim.smtp greets you\r\n250-8BITMIME\r\n250 SIZE 1048576\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_owned();
            to.clear();
            let n = if from.contains(DEFERRED) {
                let mut c = smtp.mail_commands.lock();
                *c += 1;
                *c
            } else {
                0
            };
            if n == 1 {
                "451 4.3.0 Temporary local problem, try again later\r\n"
            } else {
                "250 2.1.0 Ok\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = line[8..].trim().to_owned();
            if rcpt.contains(UNKNOWN) {
                "550 5.1.1 <nobody@shop.cn>: Recipient address rejected: User unknown\r\n"
            } else {
                to.push(rcpt);
                "250 2.1.5 Ok\r\n"
            }
        } else if upper == "DATA" {
            w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            smtp.replies.lock().push(354);
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push('\n');
            }
            smtp.accepted.lock().push(Mail {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            "250 2.0.0 Ok: queued\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 Ok\r\n"
        } else if upper == "QUIT" {
            w.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Error: command not recognized\r\n"
        };
        let last = reply.trim_end().rsplit("\r\n").next().unwrap_or(reply);
        smtp.replies.lock().push(last[..3].parse().unwrap_or(0));
        w.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

async fn start_smtp() -> (std::net::SocketAddr, Arc<Smtp>) {
    let smtp = Arc::new(Smtp::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = smtp.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = l.accept().await {
            tokio::spawn(session(stream, s.clone()));
        }
    });
    (addr, smtp)
}

async fn subscribe_email(store: &Store, t: &TenantId, url: String) -> Uuid {
    let row = SubscriptionRow {
        tenant_id: t.clone(),
        subscription_id: Uuid::now_v7(),
        url,
        event_types: vec![ORDER_CREATED.into()],
        secret: String::new(),
        description: "email".into(),
        created_at: Utc::now(),
        shops: None,
        format: SubscriptionFormat::Email,
        template: None,
    };
    let id = row.subscription_id;
    store
        .write(0, move |tx| Ok(tx.subscription_insert(&row)?))
        .await
        .unwrap();
    id
}

async fn a_deferred_mail_arrives_once_and_a_refused_one_is_dead_lettered(backend: &str) {
    let Some(ts) = harness::open(backend) else {
        return;
    };
    let tenant = harness::new_tenant(&ts.store).await;
    let (addr, smtp) = start_smtp().await;
    let s = &ts.store;
    let ok = subscribe_email(
        s,
        &tenant,
        format!("smtp://{addr}?from=orderhub@shop.cn&to=ops@shop.cn,lead@shop.cn&tls=none"),
    )
    .await;
    let refused = subscribe_email(
        s,
        &tenant,
        format!("smtp://{addr}?from=alerts@shop.cn&to={UNKNOWN}&tls=none"),
    )
    .await;
    // The URL names people: what the API shows has neither sender nor recipients.
    let shown = orderhub_store::ops::redacted_bot_url(
        SubscriptionFormat::Email,
        "smtp://ops@smtp.shop.cn:587?from=orderhub@shop.cn&to=ops@shop.cn",
    );
    assert_eq!(shown, "smtp://…@smtp.shop.cn:587?from=…&to=…");
    let cfg = orderhub_events::EventsConfig {
        poll_interval: Duration::from_millis(50),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        subscriptions_refresh: Duration::from_millis(100),
        ..orderhub_events::EventsConfig::default()
    };
    let rt = orderhub_events::EventsRuntime::start(ts.store.clone(), cfg, vec![])
        .await
        .unwrap();
    let written = harness::write_shop_events(s, &tenant, &[Some("tmall-1")]).await;
    let dead = harness::wait_dead_letters(s, &tenant, "dead", 1, Duration::from_secs(30)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while smtp.accepted.lock().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a wrong second copy to arrive, if the dispatcher were to send one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.stop().await;

    let mails = smtp.accepted.lock().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = &mails[0];
    assert_eq!(m.from, "<orderhub@shop.cn>");
    assert_eq!(m.to, ["<ops@shop.cn>", "<lead@shop.cn>"]);
    let event_id = written[0].0;
    assert!(
        m.data
            .contains(&format!("Message-ID: <{event_id}.{ok}@orderhub>")),
        "{}",
        m.data
    );
    assert!(m.data.contains("Subject: "), "{}", m.data);
    assert!(m.data.contains("shop: tmall-1"), "{}", m.data);
    assert!(m.data.contains(ORDER_CREATED), "{}", m.data);
    assert!(
        smtp.replies.lock().contains(&451) && *smtp.mail_commands.lock() == 2,
        "the first MAIL was deferred, the second accepted"
    );

    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].subscription_id, refused);
    assert_eq!(dead[0].event_id, event_id);
    assert_eq!(dead[0].attempts, 1, "a 5xx is not tried again");
    assert!(dead[0].last_error.contains("550"), "{}", dead[0].last_error);
    assert!(
        !dead[0].last_error.contains(UNKNOWN),
        "the dead letter keeps no address: {}",
        dead[0].last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_mail_arrives_once_and_a_refused_one_is_dead_lettered_sqlite() {
    a_deferred_mail_arrives_once_and_a_refused_one_is_dead_lettered("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_mail_arrives_once_and_a_refused_one_is_dead_lettered_postgres() {
    a_deferred_mail_arrives_once_and_a_refused_one_is_dead_lettered("postgres").await;
}
