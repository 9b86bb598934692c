//! Exports a geowallet history as Jepsen-shaped EDN, one op map per line.

use std::fmt::Write;

use serde_json::Value;

use crate::history::{EventType, HistoryEvent};

/// One `{:type .., :f .., :value {..}, :process .., :time .., :account ..}`
/// per line. JSON field names become kebab-case keywords; account ids and
/// currencies (keys of `balances`, `totals`, `system`, `retired`, `expected_totals`)
/// stay strings.
pub fn to_edn(history: &[HistoryEvent]) -> String {
    let mut out = String::new();
    for event in history {
        let kind = match event.kind {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        };
        // Only a number beyond both i64 and u64 fails to convert; export it as nil.
        let value = serde_json::to_value(&event.value).unwrap_or(Value::Null);
        let mut line = format!(
            "{{:type :{kind}, :f :{}, :value {}, :process {}, :time {}",
            keyword(event.f.name()),
            edn_of(&value, false),
            event.process,
            event.time_ns
        );
        if let Some(account) = &event.account {
            let _ = write!(line, ", :account {}", edn_string(account));
        }
        line.push_str("}\n");
        out.push_str(&line);
    }
    out
}

fn keyword(name: &str) -> String {
    name.replace('_', "-")
}

/// `data_keys`: this object's keys are data (account ids), not field names.
fn edn_of(value: &Value, data_keys: bool) -> String {
    match value {
        Value::Null => "nil".to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => edn_string(text),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|item| edn_of(item, false)).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(fields) => {
            let entries: Vec<String> = fields
                .iter()
                .map(|(key, value)| {
                    let nested_data = matches!(
                        key.as_str(),
                        "balances" | "totals" | "system" | "retired" | "expected_totals"
                    );
                    let key = if data_keys {
                        edn_string(key)
                    } else {
                        format!(":{}", keyword(key))
                    };
                    format!("{key} {}", edn_of(value, nested_data && !data_keys))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

fn edn_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn_value::EdnValue;
    use crate::history::parse_history;

    // Proves exported lines are valid EDN in the Jepsen op-map shape.
    #[test]
    fn exports_readable_jepsen_maps() {
        let text = concat!(
            r#"{"process":3,"type":"invoke","f":"debit","account":"42/EUR","value":{"amount":10,"tx":"t\"1"},"time_ns":123}"#,
            "\n",
            r#"{"process":3,"type":"ok","f":"read_all","value":{"balances":{"42/EUR":{"available":1,"held":0}},"system":{"EUR":-1}},"time_ns":124}"#
        );
        let edn = to_edn(&parse_history(text).unwrap());
        assert!(edn.starts_with("{:type :invoke, :f :debit, :value {:amount 10, :tx \"t\\\"1\"}, :process 3, :time 123, :account \"42/EUR\"}"), "{edn}");
        let forms = EdnValue::parse_all(&edn, "edn").unwrap();
        assert_eq!(forms.len(), 2);
        let balances = forms[1].get("value").unwrap().get("balances").unwrap();
        let EdnValue::Map(entries) = balances else {
            panic!("balances is a map")
        };
        assert_eq!(entries[0].0, EdnValue::Str("42/EUR".into()));
        let system = forms[1].get("value").unwrap().get("system").unwrap();
        let EdnValue::Map(entries) = system else {
            panic!("system is a map")
        };
        assert_eq!(entries[0].0, EdnValue::Str("EUR".into()));
        assert_eq!(
            forms[1].get("f"),
            Some(&EdnValue::Keyword("read-all".into()))
        );
    }
}
