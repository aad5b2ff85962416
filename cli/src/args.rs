//! Argument parsing helpers and output formatting shared by the subcommands.

use std::collections::BTreeMap;

use serde_json::Value;
use warrant_attestation::AttributeValue;

/// Parses `NAME=VALUE`.
pub(super) fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Bytes given in hex on the command line (a newtype: clap would read `Vec<u8>` as a list).
#[derive(Debug, Clone)]
pub(super) struct Hex(pub Vec<u8>);

/// Parses hex.
pub(super) fn hex_bytes(s: &str) -> Result<Hex, String> {
    hex::decode(s).map(Hex).map_err(|e| format!("not hex: {e}"))
}

/// `NAME=VALUE` pairs as JSON values: `true`/`false` and integers typed, the rest text.
pub(super) fn context(pairs: Vec<(String, String)>) -> BTreeMap<String, Value> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let value = match AttributeValue::parse_loose(&v) {
                AttributeValue::Text(t) => Value::from(t),
                AttributeValue::Int(i) => Value::from(i),
                AttributeValue::Bool(b) => Value::from(b),
            };
            (k, value)
        })
        .collect()
}

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a data value: JSON, or an indented text rendering.
    pub(super) fn print(&self, value: &Value) {
        if self.json {
            println!("{value}");
        } else {
            let mut text = String::new();
            render(value, 0, &mut text);
            print!("{text}");
        }
    }

    /// Reports a completed action: a sentence, or its JSON form.
    pub(super) fn done(&self, sentence: &str, value: Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{sentence}");
        }
    }
}

fn render(value: &Value, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        render(v, depth + 1, out);
                    }
                    Value::Array(a) if a.iter().any(|i| i.is_object()) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        render(v, depth + 1, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                render(item, depth, out);
                if item.is_object() {
                    out.push('\n');
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
