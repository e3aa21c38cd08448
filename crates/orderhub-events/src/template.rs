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

/// The functions a template may call: none. Loops go over a field's characters at most; a
/// function making values (`range`, `namespace`, `dict`) is not needed for a message.
const FUNCTIONS: [&str; 0] = [];

/// Statements a template may not use: each can build a value from another without writing it
/// (`set`, `with`, a macro's arguments), so a short template could double a string a hundred
/// times before the output bound sees a byte.
const STATEMENTS_REFUSED: [&str; 5] = ["set", "with", "macro", "call", "filter"];

/// Names of personal data: never in the context, refused by name so the rule is plain.
const PERSONAL: [&str; 10] = [
    "receiver", "name", "phone", "mobile", "address", "detail", "buyer", "nick", "email", "id_card",
];

/// Why a template is refused: the rule and where (`at`: a line, a name or the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// `too_long`, `syntax`, `not_allowed`, `unknown_field`, `personal_data` or `render`.
    pub rule: &'static str,
    pub message: String,
}

fn refuse(rule: &'static str, message: String) -> TemplateError {
    TemplateError { rule, message }
}

/// An environment with no loader and a short list of filters and tests, none of which makes a
/// value larger than its input by more than a few bytes (no `replace`, `indent`, `join`,
/// `format`, `center`): with the statements and the `*` refused by [`validate`], every value a
/// template computes stays within a few times its fields and text, whatever it loops over.
fn environment() -> Environment<'static> {
    use minijinja::{filters as f, tests as t};
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    env.add_filter("upper", f::upper);
    env.add_filter("lower", f::lower);
    env.add_filter("title", f::title);
    env.add_filter("capitalize", f::capitalize);
    env.add_filter("trim", f::trim);
    env.add_filter("length", f::length);
    env.add_filter("default", f::default);
    env.add_filter("d", f::default);
    env.add_filter("int", f::int);
    env.add_filter("float", f::float);
    env.add_filter("round", f::round);
    env.add_filter("abs", f::abs);
    env.add_filter("first", f::first);
    env.add_filter("last", f::last);
    env.add_filter("string", f::string);
    env.add_test("defined", t::is_defined);
    env.add_test("none", t::is_none);
    env.add_test("number", t::is_number);
    env.add_test("string", t::is_string);
    env.add_test("eq", t::is_eq);
    env.add_test("ne", t::is_ne);
    env.add_test("startingwith", t::is_startingwith);
    env.add_test("endingwith", t::is_endingwith);
    env.add_test("in", t::is_in);
    env
}

/// The statement or operator of a tag `validate` refuses, if any: a statement of
/// [`STATEMENTS_REFUSED`], or a `*` (a string times a number is that many copies) anywhere inside
/// `{{ … }}` or `{% … %}`.
fn refused_construct(src: &str) -> Option<String> {
    let mut rest = src;
    while let Some(i) = rest.find('{') {
        rest = &rest[i..];
        let close = match rest.as_bytes().get(1) {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => {
                rest = &rest[1..];
                continue;
            }
        };
        let end = rest[2..].find(close).map_or(rest.len(), |e| e + 2);
        let tag = &rest[2..end];
        if tag.contains('*') {
            return Some("the operator *".into());
        }
        if close == "%}" {
            let word = tag.trim_start_matches(['-', '+']).split_whitespace().next();
            if let Some(w) = word.filter(|w| STATEMENTS_REFUSED.contains(w)) {
                return Some(format!("the statement {w:?}"));
            }
        }
        rest = &rest[(end + close.len()).min(rest.len())..];
    }
    None
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
    if let Some(what) = refused_construct(src) {
        return Err(refuse(
            "not_allowed",
            format!("template uses {what}; a message template may not"),
        ));
    }
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

/// A writer that takes [`OUTPUT_BYTES_MAX`] bytes and fails after them, so a render stops at
/// the bound instead of building its whole text first.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = OUTPUT_BYTES_MAX - self.0.len();
        if room == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("message bound reached"));
        }
        let n = buf.len().min(room);
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `src` for the event `envelope`, cut to [`OUTPUT_BYTES_MAX`] bytes.
pub fn render(src: &str, envelope: &[u8]) -> Result<String, TemplateError> {
    let env = environment();
    let t = env
        .template_from_str(src)
        .map_err(|e| refuse("syntax", where_(&e)))?;
    let mut out = Bounded(Vec::new());
    match t.render_captured_to(context(envelope), &mut out) {
        Ok(_) => {}
        // The bound reached: what was written is the message, cut.
        Err(e) if e.kind() == minijinja::ErrorKind::WriteFailure => {}
        Err(e) => return Err(refuse("render", where_(&e))),
    }
    // A cut inside a character drops that character.
    let mut bytes = out.0;
    if let Err(e) = std::str::from_utf8(&bytes) {
        bytes.truncate(e.valid_up_to());
    }
    Ok(String::from_utf8(bytes).unwrap_or_default())
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
            "type": orderhub_domain::event_types::EXCEPTION_RAISED,
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
        assert!(validate("{{ (amount | float) - 2 }} {{ change_pct | float | abs }}").is_ok());
        assert_eq!(rule("{{ (amount | float) * 2 }}"), "not_allowed");
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
                "{% for a in order %}{% for b in order %}{% for c in order %}{% for d in order %}\
                 {% for e in order %}{% for f in order %}.{% endfor %}{% endfor %}{% endfor %}\
                 {% endfor %}{% endfor %}{% endfor %}"
            ),
            "render",
            "out of fuel"
        );
    }

    #[test]
    fn the_output_is_bounded_and_a_failure_falls_back() {
        let long = render(
            "{% for a in order %}{% for b in order %}{% for c in order %}abcdef{% endfor %}{% endfor %}{% endfor %}",
            &serde_json::to_vec(&serde_json::json!({"payload": {"external_order_id": "x".repeat(20)}})).unwrap(),
        )
        .unwrap();
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

    #[test]
    fn templates_that_would_build_large_texts_are_refused() {
        for (src, rule) in [
            (
                r#"{% for i in range(50) %}{{ "x" * 100000000 }}{% endfor %}"#,
                "not_allowed",
            ),
            (
                r#"{% set ns = namespace(s="x") %}{% for i in order %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"#,
                "not_allowed",
            ),
            (
                r#"{% with a = order ~ order %}{{ a }}{% endwith %}"#,
                "not_allowed",
            ),
            (
                r#"{% macro m(a) %}{{ m(a ~ a) }}{% endmacro %}{{ m(order) }}"#,
                "syntax",
            ),
            (r#"{{ order | replace("<", "<<<<<<<<") }}"#, "render"),
            (r#"{{ range(10) | join }}"#, "unknown_field"),
        ] {
            let e = validate(src).expect_err(src);
            assert_eq!(e.rule, rule, "{src}: {}", e.message);
        }
        // What a message needs still works, `*` in the text included.
        validate("**{{ exception | upper }}** {{ amount | float | round(1) }} {% if tracking_no %}{{ carrier }}{% endif %}")
            .unwrap();
    }

    #[test]
    fn a_render_stops_at_the_bound() {
        // Loops over a field's characters, nested: 100^3 writes, stopped at the bound.
        let src = "{% for a in order %}{% for b in order %}{% for c in order %}字{% endfor %}{% endfor %}{% endfor %}";
        let env = serde_json::to_vec(&serde_json::json!({
            "type": orderhub_domain::event_types::EXCEPTION_RAISED,
            "payload": {"external_order_id": "x".repeat(100)}
        }))
        .unwrap();
        match render(src, &env) {
            Ok(text) => {
                assert!(text.len() <= OUTPUT_BYTES_MAX && text.len() > OUTPUT_BYTES_MAX - 3);
                assert!(text.chars().all(|c| c == '字'));
            }
            // Or the fuel ran out first: refused, never a large text.
            Err(e) => assert_eq!(e.rule, "render"),
        }
    }
}
