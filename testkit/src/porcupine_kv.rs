//! Reader for porcupine's kv histories: one EDN-like map per line.

use crate::call_pairing::CallPairing;
use crate::edn_value::EdnValue;
use crate::error::TestkitError;
use crate::kv_model::{KvAction, KvInput, KvOutput};
use crate::operation::Operation;

const FORMAT: &str = "porcupine-kv";

/// Parses a whole kv file; the line number is the time. Every call
/// completes with `:ok` in these files; a put/append left open is indeterminate.
pub fn parse_porcupine_kv(text: &str) -> Result<Vec<Operation<KvInput, KvOutput>>, TestkitError> {
    let mut pairing = CallPairing::new(FORMAT);
    let mut operations = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let map = parse_line(line, line_number)?;
        let field = |key: &str| map.get(key).cloned().unwrap_or(EdnValue::Nil);
        let process = match field("process") {
            EdnValue::Int(process) if process >= 0 => process as u64,
            _ => return Err(TestkitError::parse(FORMAT, line_number, "bad :process")),
        };
        let (kind, f, key, value) = (field("type"), field("f"), field("key"), field("value"));
        let time = line_number as u64;
        match (kind, f, key, value) {
            (EdnValue::Keyword(kind), EdnValue::Keyword(f), EdnValue::Str(key), value)
                if kind == "invoke" =>
            {
                let action = match (f.as_str(), value) {
                    ("get", _) => KvAction::Get,
                    ("put", EdnValue::Str(value)) => KvAction::Put(value),
                    ("append", EdnValue::Str(value)) => KvAction::Append(value),
                    _ => return Err(TestkitError::parse(FORMAT, line_number, "bad :f or :value")),
                };
                pairing.invoke(process, KvInput { key, action }, time, line_number)?;
            }
            (EdnValue::Keyword(kind), _, _, value) if kind == "ok" => {
                let open = pairing.complete(process, line_number)?;
                let output = match (&open.call.action, value) {
                    (KvAction::Get, EdnValue::Str(read)) => KvOutput::Value(read),
                    (KvAction::Get, EdnValue::Nil) => KvOutput::Value(String::new()),
                    _ => KvOutput::Done,
                };
                operations.push(Operation {
                    process,
                    input: open.call,
                    output,
                    call_time: open.call_time,
                    return_time: Some(time),
                });
            }
            _ => {
                return Err(TestkitError::parse(
                    FORMAT,
                    line_number,
                    "bad :type, :f or :key",
                ));
            }
        }
    }
    // A put/append left open may have taken effect; an open get observed nothing.
    for open in pairing.into_open() {
        if open.call.action != KvAction::Get {
            operations.push(Operation {
                process: open.process,
                input: open.call,
                output: KvOutput::Done,
                call_time: open.call_time,
                return_time: None,
            });
        }
    }
    Ok(operations)
}

fn parse_line(line: &str, line_number: usize) -> Result<EdnValue, TestkitError> {
    match EdnValue::parse_all(line, FORMAT) {
        Ok(forms) if forms.len() == 1 => Ok(forms.into_iter().next().expect("one form")),
        Ok(_) => Err(TestkitError::parse(FORMAT, line_number, "not one map")),
        Err(error) => Err(relocate(error, line_number)),
    }
}

/// Errors from the per-line EDN reader count lines from 1 within the line.
fn relocate(error: TestkitError, line_number: usize) -> TestkitError {
    match error {
        TestkitError::Parse { message, .. } => TestkitError::parse(FORMAT, line_number, message),
        other => other,
    }
}
