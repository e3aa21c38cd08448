//! The event catalogue subscriptions choose from is exactly the set of event types the code emits.
//!
//! Every emitter names its type through `orderhub_domain::event_types`; this test reads the
//! workspace's sources and fails when (a) a source file spells an event type as a string of its
//! own (an emitter bypassing the list, whose type the catalogue would not know), (b) a type in the
//! list is used by no crate that emits events (a catalogue entry nothing sends, as
//! `inventory.below_safety` and `reservation.expired` were), or (c) the catalogue differs from the
//! list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The first part of every event type's name.
const FAMILIES: &[&str] = &[
    "order",
    "after_sale",
    "inventory",
    "channel",
    "reservation",
    "waybill",
    "carrier",
    "exception",
    "writeback",
    "subscription",
];

/// Strings shaped like event types that are something else: (file suffix, string).
const NOT_EVENTS: &[(&str, &str)] = &[
    // WeChat's field paths, named in refusals.
    ("orderhub-channels/src/wechat/mod.rs", "order.status"),
    ("orderhub-channels/src/wechat/mod.rs", "order.create_time"),
    ("orderhub-channels/src/wechat/mod.rs", "order.update_time"),
    ("orderhub-channels/src/wechat/refund.rs", "order.order_id"),
];

/// Crates that emit events (the CLI's demo and benchmarks only read or fake them).
const EMITTERS: &[&str] = &[
    "orderhub-domain",
    "orderhub-core",
    "orderhub-http",
    "orderhub-intake",
    "orderhub-fulfillment",
    "orderhub-events",
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `src/**/*.rs` of every crate, as (crate, path relative to crates/, text).
fn sources() -> Vec<(String, String, String)> {
    let root = crates_dir();
    let mut out = Vec::new();
    for c in std::fs::read_dir(&root).unwrap().flatten() {
        let name = c.file_name().to_string_lossy().into_owned();
        let mut files = Vec::new();
        rust_files(&c.path().join("src"), &mut files);
        for f in files {
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((name.clone(), rel, std::fs::read_to_string(&f).unwrap()));
        }
    }
    assert!(
        out.iter().any(|(c, _, _)| c == "orderhub-core"),
        "the workspace's sources are readable from {}",
        root.display()
    );
    out
}

const LIST: &str = "orderhub-domain/src/event_types.rs";

/// (constant name, wire name) of every `pub const NAME: &str = "…";` in the list.
fn listed() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(crates_dir().join(LIST)).unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(": &str = \"")?;
            let (value, _) = rest.split_once('"')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// String literals in `text` that start like an event type: `"<family>.…"`.
fn event_like_literals(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (i, _) in line.match_indices('"') {
            let rest = &line[i + 1..];
            let Some((word, _)) = rest.split_once('"') else {
                continue;
            };
            let Some((family, tail)) = word.split_once('.') else {
                continue;
            };
            if FAMILIES.contains(&family)
                && !tail.is_empty()
                && tail
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '{' || c == '}')
            {
                out.push((n + 1, word.to_owned()));
            }
        }
    }
    out
}

#[test]
fn no_source_spells_an_event_type_outside_the_list() {
    let mut bypasses = Vec::new();
    for (_, rel, text) in sources() {
        if rel == LIST {
            continue;
        }
        for (line, word) in event_like_literals(&text) {
            if !NOT_EVENTS
                .iter()
                .any(|(f, s)| rel.ends_with(f) && *s == word)
            {
                bypasses.push(format!("{rel}:{line}: \"{word}\""));
            }
        }
    }
    assert!(
        bypasses.is_empty(),
        "use orderhub_domain::event_types (and list a new type there) instead of:\n{}",
        bypasses.join("\n")
    );
}

#[test]
fn every_listed_event_type_is_emitted_somewhere() {
    let sources = sources();
    let unused: Vec<String> = listed()
        .into_iter()
        .filter(|(name, _)| {
            !sources.iter().any(|(krate, rel, text)| {
                rel != LIST
                    && EMITTERS.contains(&krate.as_str())
                    && text.match_indices(name.as_str()).any(|(i, _)| {
                        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
                        let before = text[..i].chars().next_back().is_none_or(|c| !word(c));
                        let after = text[i + name.len()..]
                            .chars()
                            .next()
                            .is_none_or(|c| !word(c));
                        before && after
                    })
            })
        })
        .map(|(name, value)| format!("{name} ({value})"))
        .collect();
    assert!(
        unused.is_empty(),
        "listed but used by no emitting crate: {unused:?}"
    );
}

#[test]
fn the_catalogue_is_the_list() {
    let listed = listed();
    let values: BTreeSet<&str> = listed.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values.len(), listed.len(), "no wire name twice: {listed:?}");
    let all: BTreeSet<&str> = orderhub_domain::event_types::ALL.iter().copied().collect();
    assert_eq!(all.len(), orderhub_domain::event_types::ALL.len());
    assert_eq!(all, values, "ALL holds every constant of the list");
    let catalogue: BTreeSet<&str> = orderhub_api::subscriptions::EVENT_TYPES
        .iter()
        .copied()
        .collect();
    assert_eq!(catalogue, values);
    // The five that were refused by name, and the two that were never sent.
    for t in [
        "order.channel_updated",
        "order.stock_reserved",
        "order.retry_requested",
        "order.carrier_switched",
        "writeback.acknowledged",
    ] {
        assert!(catalogue.contains(t), "{t}");
    }
    for t in ["inventory.below_safety", "reservation.expired"] {
        assert!(!catalogue.contains(t), "{t}");
    }
}
