//! E-mail subscriptions as dispatch targets (issue 24's notifications): an event becomes a short
//! plain-text mail to the people a subscription names, sent through the tenant's SMTP server
//! with `lettre`, retried and dead-lettered like every delivery.
//!
//! The subscription's URL says where and to whom (the whole URL is kept sealed; the API shows it
//! with the user and every address blanked):
//!
//! ```text
//! smtp://[user@]host[:port]?from=<address>&to=<address>[,<address>…][&tls=none]
//! smtps://[user@]host[:port]?from=<address>&to=<address>[,<address>…]
//! ```
//!
//! - `smtp://` asks for STARTTLS and refuses to go on without it (port 587 unless given);
//!   `smtps://` speaks TLS from the first byte (port 465). Certificates are checked against the
//!   host's name by rustls with the webpki roots.
//! - `tls=none` (only on `smtp://`, port 25 unless given) sends in the clear: for a relay on the
//!   same network. A password is never sent that way: a user with `tls=none` is refused.
//! - The password is the subscription's `bot_secret` (sealed at rest like a bot's secret); a user
//!   needs one and a password needs a user.
//! - `from` is one address, `to` at most [`RECIPIENTS_MAX`]; an address is `local@domain` as
//!   `lettre` parses it (RFC 5321/5322 without display names).
//!
//! The mail's subject is the message's title and the event's order, its body the same lines a
//! group bot gets ([`crate::bot::message_lines`]: no personal data), its `Message-ID` made of the
//! event and the subscription, so a retry after an unclear end (a connection cut after `DATA`)
//! is one mail to clients that collapse duplicates. A server's 4xx (and a connection or TLS
//! failure, a timeout) is tried again; its 5xx — a refused recipient, a failed login — is
//! permanent: the delivery is dead-lettered with the server's answer. Each subscription sends at
//! most [`crate::bot::PER_MINUTE`] mails a minute from this process.
//!
//! The host's addresses are resolved at every delivery and only those the outbound URL policy
//! permits are connected to (the TLS name stays the host's).

use crate::dispatch::{Delivery, Target, TargetError};
use futures::future::BoxFuture;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use orderhub_core::outbound::{self, OutboundPolicy};
use orderhub_store::SubscriptionRow;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The most recipients one subscription mails.
pub const RECIPIENTS_MAX: usize = 10;
/// How long one delivery may take, connection to `QUIT`.
const TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: STARTTLS, required.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…&tls=none`: in the clear, without a login.
    None,
}

/// A subscription's e-mail URL, parsed and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailUrl {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The login's user, if any (its password is the subscription's secret).
    pub user: Option<String>,
    pub from: Address,
    pub to: Vec<Address>,
}

/// Why an e-mail URL (with its password) is refused: the rule and a message naming the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRefusal {
    /// `url`, or `bot_secret` for what is wrong with the password.
    pub field: &'static str,
    pub rule: &'static str,
    pub message: String,
}

fn refuse(rule: &'static str, message: impl Into<String>) -> UrlRefusal {
    UrlRefusal {
        field: "url",
        rule,
        message: message.into(),
    }
}

fn refuse_secret(rule: &'static str, message: impl Into<String>) -> UrlRefusal {
    UrlRefusal {
        field: "bot_secret",
        ..refuse(rule, message)
    }
}

fn address(field: &str, raw: &str) -> Result<Address, UrlRefusal> {
    raw.trim().parse::<Address>().map_err(|_| {
        refuse(
            "invalid_address",
            format!("{field} {raw:?} is not an e-mail address (local@domain)"),
        )
    })
}

/// The URL's `from`, `to` (every address, in order) and `tls`, each checked.
type Parameters = (Option<Address>, Vec<Address>, Option<String>);

fn parameters(u: &url::Url) -> Result<Parameters, UrlRefusal> {
    let (mut from, mut to, mut tls) = (None, Vec::new(), None);
    for (k, v) in u.query_pairs() {
        match k.as_ref() {
            "from" if from.is_none() => from = Some(address("from", &v)?),
            "to" => {
                for a in v.split(',').filter(|a| !a.trim().is_empty()) {
                    to.push(address("to", a)?);
                }
            }
            "tls" if tls.is_none() => tls = Some(v.into_owned()),
            other => {
                return Err(refuse(
                    "unknown_parameter",
                    format!(
                        "url parameter {other:?} is not one of from, to, tls (once each but to)"
                    ),
                ));
            }
        }
    }
    Ok((from, to, tls))
}

impl EmailUrl {
    /// Parses `raw` (the form in the module's doc) with `password` (the subscription's secret,
    /// possibly empty).
    pub fn parse(raw: &str, password: &str) -> Result<EmailUrl, UrlRefusal> {
        let u = url::Url::parse(raw.trim())
            .map_err(|e| refuse("invalid_url", format!("url is not an absolute URL: {e}")))?;
        let mut security = match u.scheme() {
            "smtp" => Security::StartTls,
            "smtps" => Security::Implicit,
            _ => {
                return Err(refuse(
                    "unsupported_scheme",
                    "an email subscription's url is smtp:// or smtps://",
                ));
            }
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| refuse("invalid_url", "url needs the SMTP server's host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(u.path(), "" | "/") || u.fragment().is_some() {
            return Err(refuse(
                "invalid_url",
                "an SMTP url has no path or fragment: smtp://host:port?from=…&to=…",
            ));
        }
        if u.password().is_some() {
            return Err(refuse(
                "credentials_in_url",
                "the SMTP password goes in bot_secret, never in the url",
            ));
        }
        let (from, to, tls) = parameters(&u)?;
        let from = from.ok_or_else(|| refuse("required", "url needs from=<address>"))?;
        if to.is_empty() {
            return Err(refuse("required", "url needs to=<address>[,<address>…]"));
        }
        if to.len() > RECIPIENTS_MAX {
            return Err(refuse(
                "too_many",
                format!("at most {RECIPIENTS_MAX} recipients"),
            ));
        }
        match (tls.as_deref(), security) {
            (None, _) => {}
            (Some("none"), Security::StartTls) => security = Security::None,
            (Some(t), _) => {
                return Err(refuse(
                    "invalid_tls",
                    format!("tls={t:?}: the only choice is tls=none, on smtp:// only"),
                ));
            }
        }
        let user = (!u.username().is_empty()).then(|| {
            percent_encoding::percent_decode_str(u.username())
                .decode_utf8_lossy()
                .into_owned()
        });
        match (&user, password.is_empty(), security) {
            (Some(_), _, Security::None) => Err(refuse(
                "login_in_clear",
                "a login is never sent without TLS: drop tls=none or the user",
            )),
            (Some(_), true, _) => Err(refuse_secret(
                "required",
                "the url names a user: its password goes in bot_secret",
            )),
            (None, false, _) => Err(refuse_secret(
                "not_allowed",
                "bot_secret is the SMTP password: the url names no user",
            )),
            _ => Ok(EmailUrl {
                port: u.port().unwrap_or(match security {
                    Security::StartTls => 587,
                    Security::Implicit => 465,
                    Security::None => 25,
                }),
                host,
                security,
                user,
                from,
                to,
            }),
        }
    }
}

/// The mail for one delivery (`subscription`: for the `Message-ID`). `rendered`: the
/// subscription's template rendered for this event ([`crate::template`]), the mail's body
/// instead of the fixed lines (the subject stays).
pub fn message(
    url: &EmailUrl,
    envelope: &[u8],
    rendered: Option<&str>,
    event_id: Uuid,
    subscription: Uuid,
) -> Result<Message, TargetError> {
    let (title, lines) = crate::bot::message_lines(envelope);
    let order = lines
        .iter()
        .find_map(|l| l.strip_prefix("order: "))
        .map(|o| format!(" · {o}"))
        .unwrap_or_default();
    let mut b = Message::builder()
        .from(Mailbox::new(Some("orderhub".into()), url.from.clone()))
        .subject(format!("{title}{order}"))
        .message_id(Some(format!("<{event_id}.{subscription}@orderhub>")))
        .header(ContentType::TEXT_PLAIN);
    for to in &url.to {
        b = b.to(Mailbox::new(None, to.clone()));
    }
    let text = rendered.map_or_else(|| lines.join("\n"), str::to_owned);
    b.body(format!("{title}\n\n{text}\n"))
        .map_err(|e| TargetError::permanent(format!("the mail could not be built: {e}")))
}

/// What an SMTP failure means for the delivery: a 5xx answer is permanent (a retry meets it
/// again), a 4xx or no answer is tried again. The server's words are kept without any e-mail
/// address in them (a refusal names the recipient, and the dead letter's error is not sealed).
pub fn outcome(e: &lettre::transport::smtp::Error) -> TargetError {
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    let said = without_addresses(&e.to_string());
    if e.is_permanent() {
        TargetError::permanent(format!("the SMTP server refused the mail ({code}): {said}"))
    } else if e.is_transient() {
        TargetError::retry(format!(
            "the SMTP server deferred the mail ({code}): {said}"
        ))
    } else {
        TargetError::retry(format!("the SMTP server could not be reached: {said}"))
    }
}

/// `text` with every word that holds an `@` (an address, bracketed or not) blanked.
pub fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|w| if w.contains('@') { "<…>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

pub struct EmailTarget {
    sub: SubscriptionRow,
    outbound: OutboundPolicy,
}

impl EmailTarget {
    pub fn new(sub: SubscriptionRow, outbound: OutboundPolicy) -> Self {
        EmailTarget { sub, outbound }
    }

    /// The first address of `host` the policy permits (a literal address is checked as it is).
    async fn address(&self, host: &str, port: u16) -> Result<std::net::IpAddr, TargetError> {
        let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| TargetError::retry(format!("the SMTP host did not resolve: {e}")))?
            .collect();
        found
            .iter()
            .map(|a| a.ip())
            .find(|ip| self.outbound.permits(*ip).is_ok())
            .ok_or_else(|| {
                if found.is_empty() {
                    TargetError::retry("the SMTP host has no address")
                } else {
                    TargetError::permanent(outbound::REFUSED)
                }
            })
    }

    async fn send(&self, d: &Delivery) -> Result<(), TargetError> {
        let url = EmailUrl::parse(&self.sub.url, &self.sub.secret)
            .map_err(|r| TargetError::permanent(format!("the e-mail url: {}", r.message)))?;
        let ip = self.address(&url.host, url.port).await?;
        let tls = || {
            TlsParameters::new(url.host.clone())
                .map_err(|e| TargetError::permanent(format!("TLS for the SMTP host: {e}")))
        };
        let tls = match url.security {
            Security::StartTls => Tls::Required(tls()?),
            Security::Implicit => Tls::Wrapper(tls()?),
            Security::None => Tls::None,
        };
        let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(ip.to_string())
            .port(url.port)
            .tls(tls)
            .timeout(Some(TIMEOUT));
        if let Some(user) = &url.user {
            t = t.credentials(Credentials::new(user.clone(), self.sub.secret.clone()));
        }
        let rendered =
            crate::template::render_or_fixed(self.sub.template.as_deref(), "email", d.body());
        let mail = message(
            &url,
            d.body(),
            rendered.as_deref(),
            d.event_id,
            self.sub.subscription_id,
        )?;
        t.build()
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| outcome(&e))
    }
}

impl Target for EmailTarget {
    fn id(&self) -> Uuid {
        self.sub.subscription_id
    }

    fn kind(&self) -> &str {
        "email"
    }

    fn wants(&self, event_type: &str) -> bool {
        self.sub.wants(event_type)
    }

    fn takes(&self, d: &Delivery) -> bool {
        self.sub.wants(&d.event_type) && self.sub.covers_shop(d.shop_id())
    }

    fn deliver<'a>(
        &'a self,
        d: &'a Delivery,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            if !crate::bot::admit(self.sub.subscription_id, Instant::now()) {
                return Err(TargetError::retry(format!(
                    "more than {} mails a minute to this subscription: later",
                    crate::bot::PER_MINUTE
                )));
            }
            self.send(d).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str, password: &str) -> &'static str {
        EmailUrl::parse(raw, password).unwrap_err().rule
    }

    #[test]
    fn urls_name_server_security_and_people() {
        let u = EmailUrl::parse(
            "smtp://ops%40shop.cn@smtp.example.com?from=orderhub@shop.cn&to=a@shop.cn,b@shop.cn",
            "pw",
        )
        .unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.security),
            ("smtp.example.com", 587, Security::StartTls)
        );
        assert_eq!(u.user.as_deref(), Some("ops@shop.cn"));
        let plus = EmailUrl::parse("smtp://a+b@h?from=a@b.cn&to=c@d.cn", "pw").unwrap();
        assert_eq!(
            plus.user.as_deref(),
            Some("a+b"),
            "a '+' in a user is itself"
        );
        assert_eq!(u.to.len(), 2);
        let u = EmailUrl::parse("smtps://mail.example.com?from=a@b.cn&to=c@d.cn", "").unwrap();
        assert_eq!((u.port, u.security), (465, Security::Implicit));
        let u = EmailUrl::parse("smtp://10.0.0.5:2525?from=a@b.cn&to=c@d.cn&tls=none", "").unwrap();
        assert_eq!((u.port, u.security), (2525, Security::None));
    }

    #[test]
    fn bad_urls_are_refused_by_rule() {
        let to = "from=a@b.cn&to=c@d.cn";
        assert_eq!(
            refused(&format!("https://h?{to}"), ""),
            "unsupported_scheme"
        );
        assert_eq!(
            refused(&format!("smtp://u:p@h?{to}"), ""),
            "credentials_in_url"
        );
        assert_eq!(refused("smtp://h?to=c@d.cn", ""), "required");
        assert_eq!(refused("smtp://h?from=a@b.cn", ""), "required");
        assert_eq!(
            refused("smtp://h?from=a@b.cn&to=not-an-address", ""),
            "invalid_address"
        );
        let many: Vec<String> = (0..11).map(|i| format!("p{i}@d.cn")).collect();
        assert_eq!(
            refused(&format!("smtp://h?from=a@b.cn&to={}", many.join(",")), ""),
            "too_many"
        );
        assert_eq!(
            refused(&format!("smtps://h?{to}&tls=none"), ""),
            "invalid_tls"
        );
        assert_eq!(
            refused(&format!("smtp://h?{to}&tls=maybe"), ""),
            "invalid_tls"
        );
        assert_eq!(
            refused(&format!("smtp://u@h?{to}&tls=none"), "pw"),
            "login_in_clear"
        );
        assert_eq!(refused(&format!("smtp://u@h?{to}"), ""), "required");
        assert_eq!(refused(&format!("smtp://h?{to}"), "pw"), "not_allowed");
        assert_eq!(
            refused(&format!("smtp://h?{to}&cc=x@y.cn"), ""),
            "unknown_parameter"
        );
        assert_eq!(refused(&format!("smtp://h/x@y.cn?{to}"), ""), "invalid_url");
        assert_eq!(refused(&format!("smtp://h?{to}#x"), ""), "invalid_url");
    }

    #[test]
    fn a_servers_words_keep_no_address() {
        assert_eq!(
            without_addresses(
                "550 5.1.1 <nobody@shop.cn>: Recipient address rejected: a@b.cn unknown"
            ),
            "550 5.1.1 <…> Recipient address rejected: <…> unknown"
        );
    }

    #[test]
    fn the_mail_names_the_event_and_order_and_never_the_receiver() {
        let url = EmailUrl::parse("smtp://h?from=orderhub@shop.cn&to=ops@shop.cn", "").unwrap();
        let envelope = serde_json::to_vec(&serde_json::json!({
            "type": orderhub_domain::event_types::EXCEPTION_RAISED,
            "occurred_at": "2026-12-07T08:00:00Z",
            "payload": {"external_order_id": "T-1", "shop_id": "tmall-1", "code": "no_waybill",
                        "receiver": {"name": "王小明", "phone": "13812345678"}}
        }))
        .unwrap();
        let (event, sub) = (Uuid::now_v7(), Uuid::now_v7());
        let m = message(&url, &envelope, None, event, sub).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains(&format!("Message-ID: <{event}.{sub}@orderhub>")),
            "{text}"
        );
        assert!(text.contains("To: ops@shop.cn"), "{text}");
        assert!(text.contains("exception: no_waybill"), "{text}");
        assert!(
            !text.contains("13812345678") && !text.contains("王小明"),
            "{text}"
        );
        // With the subscription's template: its text is the body, the subject stays.
        let src = "Order {{ order }} needs you: {{ exception }} (shop {{ shop }})";
        let rendered = crate::template::render_or_fixed(Some(src), "email", &envelope);
        let m = message(&url, &envelope, rendered.as_deref(), event, sub).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Order T-1 needs you: no_waybill (shop tmall-1)"),
            "{text}"
        );
        assert!(text.contains("Subject: orderhub"), "{text}");
        assert!(!text.contains("exception: no_waybill"), "{text}");
    }
}
