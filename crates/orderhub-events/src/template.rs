//! Per-subscription message templates (issue 24's notifications): a bot or e-mail subscription may
//! carry a text template (Jinja syntax, by `minijinja`) that replaces the fixed message's body.
//!
//! - **Only the fixed message's fields** ([`FIELDS`]): the event type and time, the order's
//!   external id and id, channel, shop, status, amount, exception code, kind, carrier, tracking
//!   number and case, and a data-quality alert's figures. Personal data is not in the context at
//!   all — a template naming a receiver's or buyer's field is refused — and every field is there
//!   for every event (`""` when the event has none), so `{% if tracking_no %}` works everywhere.
//! - **Checked when stored** ([`validate`]): at most [`TEMPLATE_CHARS_MAX`] characters, it parses,
//!   names no other variable (strict undefined), and renders a sample event within the fuel.
//! - **Bounded when rendered** ([`render`]): no loader (no `include`, `import`, `extends`), a fuel
//!   limit on the instructions one render runs, a recursion limit, the output cut to
//!   [`OUTPUT_BYTES_MAX`]. A render that fails at delivery is no lost notification: the caller
//!   sends the fixed message instead and counts a warning ([`render_or_fixed`]).

use minijinja::{Environment, UndefinedBehavior, Value};
use std::collections::BTreeMap;

/// The longest template taken, in characters: a message, not a document.
pub const TEMPLATE_CHARS_MAX: usize = 2_000;
/// The longest rendered text kept, in bytes (WeCom's limit on a markdown message).
pub const OUTPUT_BYTES_MAX: usize = 4_096;
/// Instructions one render may run: a few hundred lines of output with loops, never a hang.
const FUEL: u64 = 50_000;

/// The names a template may use and the payload key each is read from (`""`: the envelope's own).
pub const FIELDS: [(&str, &str); 21] = [
    ("event", ""),
    ("at", ""),
    ("order", "external_order_id"),
    ("order_id", "order_id"),
    ("channel", "channel"),
    ("shop", "shop_id"),
    ("status", "status"),
    ("amount", "paid_amount"),
    ("exception", "exception"),
    ("kind", "kind"),
    ("carrier", "carrier"),
    ("tracking_no", "tracking_no"),
    ("case_id", "case_id"),
    // A data-quality alert's figures (`quality.alert`).
    ("metric", "metric"),
    ("day", "day"),
    ("scope_kind", "scope_kind"),
    ("scope", "scope"),
    ("value", "value"),
    ("baseline", "baseline"),
    ("change_pct", "change_pct"),
    ("threshold_pct", "threshold_pct"),
];

/// The builtin functions a template may call.
const FUNCTIONS: [&str; 3] = ["range", "dict", "namespace"];

/// Names of personal data: never in the context, refused by name so the rule is plain.
const PERSONAL: [&str; 10] = [
    "receiver", "name", "phone", "mobile", "address", "detail", "buyer", "nick", "email", "id_card",
];

/// Why a template is refused: the rule and where (`at`: a line, a name or the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// `too_long`, `syntax`, `unknown_field`, `personal_data` or `render`.
    pub rule: &'static str,
    pub message: String,
}

fn refuse(rule: &'static str, message: String) -> TemplateError {
    TemplateError { rule, message }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    env
}

fn is_personal(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    PERSONAL
        .iter()
        .any(|p| n == *p || n.starts_with(&format!("{p}_")) || n.ends_with(&format!("_{p}")))
}

fn where_(e: &minijinja::Error) -> String {
    let what = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.line() {
        Some(l) => format!("line {l}: {what}"),
        None => what,
    }
}

/// Checks a template as it is stored: its length, its syntax, its names, a sample render.
pub fn validate(src: &str) -> Result<(), TemplateError> {
    let n = src.chars().count();
    if n > TEMPLATE_CHARS_MAX {
        return Err(refuse(
            "too_long",
            format!("template is {n} characters; at most {TEMPLATE_CHARS_MAX}"),
        ));
    }
    let env = environment();
    let t = env
        .template_from_str(src)
        .map_err(|e| refuse("syntax", format!("template does not parse: {}", where_(&e))))?;
    let mut names: Vec<String> = t.undeclared_variables(false).into_iter().collect();
    names.sort();
    for name in names {
        if FIELDS.iter().any(|(f, _)| *f == name) || FUNCTIONS.contains(&name.as_str()) {
            continue;
        }
        if is_personal(&name) {
            return Err(refuse(
                "personal_data",
                format!("template names {name:?}: personal data is never in a message"),
            ));
        }
        let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
        return Err(refuse(
            "unknown_field",
            format!(
                "template names {name:?}, which is not one of {}",
                known.join(", ")
            ),
        ));
    }
    let sample: BTreeMap<&str, Value> = FIELDS
        .iter()
        .map(|(f, _)| (*f, Value::from(sample_value(f))))
        .collect();
    t.render(&sample).map_err(|e| {
        refuse(
            "render",
            format!("template fails on an event: {}", where_(&e)),
        )
    })?;
    Ok(())
}

/// A field's value in the sample event a template is tried on when stored: a number where the
/// field is one (so `{{ amount | float }}` passes), else the field's name.
fn sample_value(field: &str) -> String {
    match field {
        "amount" => "99.00".into(),
        "value" | "baseline" => "1234.56".into(),
        "change_pct" | "threshold_pct" => "-12.5".into(),
        "day" => "2026-12-07".into(),
        "at" => "2026-12-07T08:00:00Z".into(),
        other => format!("<{other}>"),
    }
}

/// The context of one event: every name of [`FIELDS`], `""` where the event has none.
fn context(envelope: &[u8]) -> BTreeMap<&'static str, Value> {
    let v: serde_json::Value = serde_json::from_slice(envelope).unwrap_or_default();
    let p = &v["payload"];
    FIELDS
        .iter()
        .map(|(name, key)| {
            let raw = match *name {
                "event" => &v["type"],
                "at" => &v["occurred_at"],
                // `exception.raised` names its code `exception`; other events `code`.
                "exception" if p[*key].is_null() => &p["code"],
                _ => &p[*key],
            };
            let s = match raw {
                serde_json::Value::String(s) => s.chars().take(100).collect::<String>(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            (*name, Value::from(s))
        })
        .collect()
}

/// Renders `src` for the event `envelope`, cut to [`OUTPUT_BYTES_MAX`] bytes.
pub fn render(src: &str, envelope: &[u8]) -> Result<String, TemplateError> {
    let env = environment();
    let t = env
        .template_from_str(src)
        .map_err(|e| refuse("syntax", where_(&e)))?;
    let mut out = t
        .render(context(envelope))
        .map_err(|e| refuse("render", where_(&e)))?;
    while out.len() > OUTPUT_BYTES_MAX {
        out.pop();
    }
    Ok(out)
}

/// The subscription's rendered message, or `None` (send the fixed one) when it has no template or
/// the template fails on this event — logged and counted
/// (`orderhub_notification_template_failures_total{format}`), never a lost notification.
pub fn render_or_fixed(template: Option<&str>, format: &str, envelope: &[u8]) -> Option<String> {
    let src = template.filter(|t| !t.trim().is_empty())?;
    match render(src, envelope) {
        Ok(text) => Some(text),
        Err(e) => {
            metrics::counter!("orderhub_notification_template_failures_total", "format" => format.to_owned())
                .increment(1);
            tracing::warn!(format, rule = e.rule, error = %e.message, "A message template failed; the fixed message is sent instead.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": "exception.raised",
            "occurred_at": "2026-12-07T08:00:00Z",
            "payload": {
                "external_order_id": "T-1", "channel": "taobao", "shop_id": "tmall-1",
                "status": "paid", "exception": "ship_by_at_risk", "paid_amount": "99.00",
                "receiver": {"name": "王小明", "phone": "13812345678"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_template_renders_the_events_fields_and_blanks_what_it_lacks() {
        let src = "{{ event }} {{ order }} @{{ channel }}/{{ shop }}: {{ exception | upper }}\
                   {% if tracking_no %} ({{ tracking_no }}){% endif %} ¥{{ amount }}";
        validate(src).unwrap();
        assert_eq!(
            render(src, &envelope()).unwrap(),
            "exception.raised T-1 @taobao/tmall-1: SHIP_BY_AT_RISK ¥99.00"
        );
    }

    #[test]
    fn bad_templates_are_refused_with_the_rule() {
        let rule = |s: &str| validate(s).unwrap_err().rule;
        assert!(validate("{{ (amount | float) * 2 }} {{ change_pct | float | abs }}").is_ok());
        assert_eq!(rule("{{ order "), "syntax");
        assert!(
            validate("a\n{% if %}")
                .unwrap_err()
                .message
                .contains("line 2")
        );
        assert_eq!(rule("{{ customer }}"), "unknown_field");
        assert_eq!(rule("{{ receiver.name }}"), "personal_data");
        assert_eq!(rule("{{ receiver_phone }}"), "personal_data");
        assert_eq!(rule("{{ buyer_nick }}"), "personal_data");
        assert_eq!(rule(&"x".repeat(TEMPLATE_CHARS_MAX + 1)), "too_long");
        assert!(validate(&"x".repeat(TEMPLATE_CHARS_MAX)).is_ok());
        assert_eq!(
            rule("{% include 'other' %}"),
            "syntax",
            "no loader, no include"
        );
        assert_eq!(
            rule(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
            ),
            "render",
            "out of fuel"
        );
    }

    #[test]
    fn the_output_is_bounded_and_a_failure_falls_back() {
        let long = render("{% for i in range(2000) %}abcdef{% endfor %}", &envelope()).unwrap();
        assert_eq!(long.len(), OUTPUT_BYTES_MAX);
        assert_eq!(
            render_or_fixed(Some("{{ nope }}"), "wecom", &envelope()),
            None
        );
        assert_eq!(render_or_fixed(None, "wecom", &envelope()), None);
        assert_eq!(
            render_or_fixed(Some("{{ order }}"), "wecom", &envelope()).as_deref(),
            Some("T-1")
        );
    }
}
