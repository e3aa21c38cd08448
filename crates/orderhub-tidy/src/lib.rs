//! Plain-text readers of the workspace's own files for the tidy tests (`tests/tidy.rs`): the
//! dependencies a `Cargo.toml` declares, the functions of a Rust file with their length in lines,
//! and the paths ARCHITECTURE.md names. No parser crate: the checks need braces, names and lines,
//! and a lexer that blanks comments and literals is enough for those (its own tests are below).

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root: this crate lives at `crates/orderhub-tidy`.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The member crates: every directory under `crates/` with a `Cargo.toml` (the root manifest
/// lists its members as `crates/*`), sorted by name.
pub fn member_crates(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(root.join("crates")) else {
        return out;
    };
    for e in entries.flatten() {
        let dir = e.path();
        if dir.join("Cargo.toml").is_file() {
            out.push((e.file_name().to_string_lossy().into_owned(), dir));
        }
    }
    out.sort();
    out
}

/// The dependencies a manifest declares for the code that ships: the names under
/// `[dependencies]`, `[build-dependencies]` and `[target.….dependencies]` (not
/// `[dev-dependencies]`: tests may start servers and clients of their own). Reads the keys
/// (`name = …`, `name.workspace = true`); a renamed dependency (`package = …`) is taken by its key.
pub fn shipped_dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let section = line.trim_matches(|c| c == '[' || c == ']');
            in_deps = section == "dependencies"
                || section == "build-dependencies"
                || (section.starts_with("target.") && section.ends_with(".dependencies"));
            continue;
        }
        if !in_deps || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line
            .split(['=', '.'])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if !key.is_empty() {
            out.push(key.to_owned());
        }
    }
    out
}

/// `src` with comments and string, byte-string and char literals replaced by spaces (line breaks
/// kept, so line numbers stay), so braces, `fn` and paths can be found in plain text. Lifetimes
/// (`'a`) are kept as they are.
pub fn blank_literals(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < c.len() {
        match literal_end(&c, i) {
            Some(end) => {
                let end = end.min(c.len());
                out.extend(
                    c[i..end]
                        .iter()
                        .map(|ch| if *ch == '\n' { '\n' } else { ' ' }),
                );
                i = end;
            }
            None => {
                out.push(c[i]);
                i += 1;
            }
        }
    }
    out
}

/// When a comment or a literal starts at `c[i]`: the index just after it (or the text's end
/// when it is not closed).
fn literal_end(c: &[char], i: usize) -> Option<usize> {
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let at = |k: usize| c.get(k).copied();
    match c[i] {
        '/' if at(i + 1) == Some('/') => Some(
            c[i..]
                .iter()
                .position(|ch| *ch == '\n')
                .map_or(c.len(), |k| i + k),
        ),
        '/' if at(i + 1) == Some('*') => {
            // Block comments nest.
            let (mut depth, mut k) = (0, i);
            while k < c.len() {
                if c[k] == '/' && at(k + 1) == Some('*') {
                    depth += 1;
                    k += 2;
                } else if c[k] == '*' && at(k + 1) == Some('/') {
                    depth -= 1;
                    k += 2;
                    if depth == 0 {
                        return Some(k);
                    }
                } else {
                    k += 1;
                }
            }
            Some(c.len())
        }
        // r"…", r#"…"#, br#"…"# (a `b` before it stays and is harmless); `r#type`, a raw
        // identifier, has no quote after its hash.
        'r' if (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))))
            && raw_string_opens(c, i + 1) =>
        {
            let hashes = c[i + 1..].iter().take_while(|ch| **ch == '#').count();
            let mut k = i + 2 + hashes;
            while k < c.len() {
                if c[k] == '"' && (1..=hashes).all(|h| at(k + h) == Some('#')) {
                    return Some(k + 1 + hashes);
                }
                k += 1;
            }
            Some(c.len())
        }
        '"' => {
            let mut k = i + 1;
            while k < c.len() {
                match c[k] {
                    '\\' => k += 2,
                    '"' => return Some(k + 1),
                    _ => k += 1,
                }
            }
            Some(c.len())
        }
        // An escaped char literal: '\n', '\'', '\u{4e2d}'.
        '\'' if at(i + 1) == Some('\\') => {
            let close = c
                .get(i + 3..)
                .unwrap_or(&[])
                .iter()
                .position(|ch| *ch == '\'');
            Some(close.map_or(c.len(), |k| i + 3 + k + 1))
        }
        // A one-char literal: 'a', '{', '"'. Anything else after a quote is a lifetime.
        '\'' if at(i + 2) == Some('\'') => Some(i + 3),
        _ => None,
    }
}

/// Whether `c[j..]` is `#…#"`: the hashes and quote that open a raw string.
fn raw_string_opens(c: &[char], mut j: usize) -> bool {
    while j < c.len() && c[j] == '#' {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

/// A function with a body, as found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// `Type::name` inside an `impl` or `trait` block (the self type's last path segment), else
    /// `name`; a second function of the same key in one file gets `#2`, a third `#3`, in order.
    pub key: String,
    /// The line of `fn` (1-based).
    pub line: usize,
    /// Lines from the `fn` line to the closing brace's, both counted.
    pub lines: usize,
}

/// The functions with a body in Rust source `src`, outside `#[cfg(test)]` items. Also returns the
/// modules declared `#[cfg(test)] mod name;` (their files hold tests only).
pub fn functions(src: &str) -> (Vec<Function>, Vec<String>) {
    let text = blank_literals(src);
    let c: Vec<char> = text.chars().collect();
    let line_of = line_index(&c);
    let (skipped, test_mods) = cfg_test_ranges(&c);
    let blocks = impl_blocks(&c);
    let mut out: Vec<Function> = Vec::new();
    let mut i = 0;
    while let Some(at) = find_word(&c, "fn", i) {
        i = at + 2;
        if skipped.iter().any(|(s, e)| at >= *s && at <= *e) {
            continue;
        }
        // `fn` followed by a name (not `fn(` of a pointer type, not `$name` of a macro).
        let mut j = at + 2;
        if !c.get(j).is_some_and(|ch| ch.is_whitespace()) {
            continue;
        }
        while j < c.len() && c[j].is_whitespace() {
            j += 1;
        }
        let name_start = j;
        while j < c.len() && (c[j].is_alphanumeric() || c[j] == '_') {
            j += 1;
        }
        if name_start == j || c[name_start].is_ascii_digit() {
            continue;
        }
        let name: String = c[name_start..j].iter().collect();
        let Some(open) = body_open(&c, j) else {
            continue;
        };
        let Some(close) = matching_brace(&c, open) else {
            continue;
        };
        let owner = blocks
            .iter()
            .filter(|b| b.open < at && at < b.close)
            .max_by_key(|b| b.open)
            .map(|b| b.name.clone());
        let base = match owner {
            Some(t) => format!("{t}::{name}"),
            None => name,
        };
        let seen = out
            .iter()
            .filter(|f| f.key == base || f.key.starts_with(&format!("{base}#")))
            .count();
        let key = if seen == 0 {
            base
        } else {
            format!("{base}#{}", seen + 1)
        };
        out.push(Function {
            key,
            line: line_of[at],
            lines: line_of[close] - line_of[at] + 1,
        });
    }
    (out, test_mods)
}

/// Source text with comments and literals blanked ([`blank_literals`]) and every `#[cfg(test)]`
/// item blanked too (line breaks kept): the code that ships, for searching in plain text.
pub fn shipped_text(src: &str) -> String {
    let c: Vec<char> = blank_literals(src).chars().collect();
    let (ranges, _) = cfg_test_ranges(&c);
    c.iter()
        .enumerate()
        .map(|(k, ch)| {
            if *ch != '\n' && ranges.iter().any(|(s, e)| k >= *s && k <= *e) {
                ' '
            } else {
                *ch
            }
        })
        .collect()
}

/// The 1-based line of every char index.
fn line_index(c: &[char]) -> Vec<usize> {
    let mut line = 1;
    let mut out = Vec::with_capacity(c.len() + 1);
    for &ch in c {
        out.push(line);
        if ch == '\n' {
            line += 1;
        }
    }
    out.push(line);
    out
}

/// The next index at or after `from` where `word` stands as a whole identifier.
fn find_word(c: &[char], word: &str, from: usize) -> Option<usize> {
    let w: Vec<char> = word.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = from;
    while i + w.len() <= c.len() {
        if c[i..i + w.len()] == w[..]
            && (i == 0 || !ident(c[i - 1]))
            && c.get(i + w.len()).is_none_or(|ch| !ident(*ch))
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// After a function's name: the index of its body's `{`, or `None` when a `;` ends it first (a
/// declaration in a trait or an `extern` block). Parentheses and brackets are skipped, so
/// `[u8; 4]` in a signature does not end it.
fn body_open(c: &[char], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, &ch) in c.iter().enumerate().skip(from) {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            '{' if depth == 0 => return Some(k),
            ';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The index of the `}` that closes the `{` at `open`.
fn matching_brace(c: &[char], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, &ch) in c.iter().enumerate().skip(open) {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// The char ranges of items under `#[cfg(test)]` (to the end of the item: its `;` or its
/// closing brace), and the names of modules declared `#[cfg(test)] mod name;`.
fn cfg_test_ranges(c: &[char]) -> (Vec<(usize, usize)>, Vec<String>) {
    let pattern: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut ranges = Vec::new();
    let mut mods = Vec::new();
    let mut i = 0;
    while i + pattern.len() <= c.len() {
        if c[i..i + pattern.len()] != pattern[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + pattern.len();
        // The item's end: a `;` or a brace block at depth 0, whichever comes first.
        let mut depth = 0i32;
        let mut end = c.len() - 1;
        while j < c.len() {
            match c[j] {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                ';' if depth == 0 => {
                    end = j;
                    break;
                }
                '{' if depth == 0 => {
                    end = matching_brace(c, j).unwrap_or(c.len() - 1);
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let item: String = c[start + pattern.len()..=end].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let [.., "mod", name] = words.as_slice()
            && let Some(name) = name.strip_suffix(';')
        {
            mods.push(name.to_owned());
        }
        ranges.push((start, end));
        i = end + 1;
    }
    (ranges, mods)
}

/// An `impl` or `trait` block: the type (or trait) it belongs to and its braces.
struct Block {
    name: String,
    open: usize,
    close: usize,
}

/// Every `impl … {` and `trait Name … {` at item position. `impl` in a type (`-> impl Future`,
/// `x: impl Into<String>`) follows `:`, `->`, `(`, `,`, `<`, `&` or `=` and is not a block.
fn impl_blocks(c: &[char]) -> Vec<Block> {
    let mut out = Vec::new();
    for word in ["impl", "trait"] {
        let mut i = 0;
        while let Some(at) = find_word(c, word, i) {
            i = at + word.len();
            let prev_end = c[..at].iter().rposition(|ch| !ch.is_whitespace());
            let prev = prev_end.map(|k| c[k]);
            let prev_word: String = match prev_end {
                Some(end) => {
                    let start = c[..end].iter().rposition(|ch| ch.is_whitespace());
                    c[start.map_or(0, |s| s + 1)..=end].iter().collect()
                }
                None => String::new(),
            };
            let item_position = match prev {
                None => true,
                Some('}' | ';' | '{' | ']') => true,
                _ => matches!(
                    prev_word.as_str(),
                    "unsafe" | "pub" | "pub(crate)" | "pub(super)" | "default" | "auto"
                ),
            };
            if !item_position {
                continue;
            }
            let Some(open) = body_open(c, at) else {
                continue;
            };
            let Some(close) = matching_brace(c, open) else {
                continue;
            };
            let header: String = c[at + word.len()..open].iter().collect();
            let name = if word == "trait" {
                header
                    .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .find(|s| !s.is_empty())
                    .unwrap_or("")
                    .to_owned()
            } else {
                impl_self_type(&header)
            };
            out.push(Block { name, open, close });
        }
    }
    out
}

/// The self type of an impl header (what follows `impl`): after its generics and after ` for `,
/// without references, generics, a `where` clause and the path before its last segment.
fn impl_self_type(header: &str) -> String {
    let h = header.trim_start();
    // Skip the impl's own generics: `<T: Into<String>>`.
    let mut rest = h;
    if h.starts_with('<') {
        let mut depth = 0;
        for (k, ch) in h.char_indices() {
            match ch {
                '<' => depth += 1,
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        rest = &h[k + 1..];
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let rest = rest.split(" where ").next().unwrap_or(rest);
    // ` for ` at generic depth 0 separates the trait from the self type.
    let mut depth = 0;
    let mut self_type = rest;
    let b = rest.as_bytes();
    for k in 0..b.len() {
        match b[k] {
            b'<' => depth += 1,
            b'>' => depth -= 1,
            _ if depth == 0 && rest[k..].starts_with(" for ") => self_type = &rest[k + 5..],
            _ => {}
        }
    }
    let t = self_type
        .trim()
        .trim_start_matches('&')
        .trim_start_matches("mut ")
        .trim_start_matches("dyn ")
        .trim();
    let t = t.split('<').next().unwrap_or(t);
    t.rsplit("::").next().unwrap_or(t).trim().to_owned()
}

/// Every file under `dir` (recursively) whose name ends with `suffix`, skipping build output,
/// dependencies and VCS metadata (`target`, `node_modules`, `.git`), sorted.
pub fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut |p| {
        if p.to_string_lossy().ends_with(suffix) {
            out.push(p.to_owned());
        }
    });
    out.sort();
    out
}

/// Calls `f` with every file and directory under `dir`, skipping `target`, `node_modules` and
/// dot-directories.
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if p.is_dir() {
            if name == "target" || name == "node_modules" || name.starts_with('.') {
                continue;
            }
            f(&p);
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(src: &str) -> Vec<(String, usize)> {
        functions(src)
            .0
            .into_iter()
            .map(|f| (f.key, f.lines))
            .collect()
    }

    #[test]
    fn braces_in_literals_and_comments_do_not_count() {
        let src = "fn a() {\n    let s = \"}}}\";\n    let c = '}';\n    // }\n    /* } /* } */ } */\n    let r = r#\"}\"#;\n}\nfn b<'x>(v: &'x str) -> &'x str {\n    v\n}\n";
        assert_eq!(keys(src), vec![("a".to_owned(), 7), ("b".to_owned(), 3)]);
    }

    #[test]
    fn escaped_quotes_and_char_escapes_stay_inside_their_literal() {
        let src = "fn a() {\n    let s = \"a\\\"{\";\n    let c = '\\'';\n    let u = '\\u{7b}';\n}\nfn b() {}\n";
        assert_eq!(keys(src), vec![("a".to_owned(), 5), ("b".to_owned(), 1)]);
    }

    #[test]
    fn methods_are_named_by_their_type_and_test_items_are_left_out() {
        let src = "impl<T: Clone> Store<T> {\n    pub fn get(&self) -> impl Iterator<Item = u8> { [].into_iter() }\n}\nimpl std::fmt::Display for Order {\n    fn fmt(&self) {}\n}\ntrait Carrier {\n    fn name(&self) -> &str;\n    fn kind(&self) { }\n}\nfn take(f: fn(u8) -> u8, x: [u8; 4]) {}\n#[cfg(test)]\nmod tests {\n    fn helper() {}\n}\n#[cfg(test)]\nmod more_tests;\n";
        let (fns, mods) = functions(src);
        let got: Vec<&str> = fns.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(got, ["Store::get", "Order::fmt", "Carrier::kind", "take"]);
        assert_eq!(mods, ["more_tests"]);
    }

    #[test]
    fn a_second_function_of_the_same_name_is_numbered() {
        let src = "impl A { fn new() {} }\nimpl A { fn new() {} }\n";
        let got: Vec<String> = functions(src).0.into_iter().map(|f| f.key).collect();
        assert_eq!(got, ["A::new", "A::new#2"]);
    }

    #[test]
    fn shipped_text_leaves_out_tests_comments_and_strings() {
        let src = "use a; // std::fs\nconst S: &str = \"std::net\";\n#[cfg(test)]\nmod tests {\n    use std::fs;\n}\nfn b() {}\n";
        let text = shipped_text(src);
        assert!(!text.contains("std::"), "{text}");
        assert!(text.contains("fn b()"));
        assert_eq!(text.lines().count(), src.lines().count());
    }

    #[test]
    fn dev_dependencies_are_not_shipped() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\naxum.workspace = true\nreqwest = { version = \"0.12\" }\n# hyper = \"1\"\n\n[dev-dependencies]\nhyper.workspace = true\n\n[target.'cfg(unix)'.dependencies]\ntokio = \"1\"\n";
        assert_eq!(shipped_dependencies(manifest), ["axum", "reqwest", "tokio"]);
    }
}
