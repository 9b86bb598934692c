//! Reader for Knossos cas-register EDN histories.

use crate::call_pairing::CallPairing;
use crate::cas_register_model::CasRegisterOutput;
use crate::edn_value::EdnValue;
use crate::error::TestkitError;
use crate::operation::Operation;
use crate::register_input::RegisterInput;

const FORMAT: &str = "knossos-edn";

/// Parses one EDN collection of op maps. Knossos's rules: nemesis ops are
/// skipped, `:fail` removes the call, `:info` or no completion leaves it
/// indeterminate. The op's position in the collection is its time.
pub fn parse_knossos_edn(
    text: &str,
) -> Result<Vec<Operation<RegisterInput, CasRegisterOutput>>, TestkitError> {
    let forms = EdnValue::parse_all(text, FORMAT)?;
    let maps = op_maps(&forms)?;
    let mut pairing = CallPairing::new(FORMAT);
    let mut operations = Vec::new();
    for (index, map) in maps.iter().enumerate() {
        let position = index + 1;
        let time = position as u64;
        let process = match map.get("process") {
            Some(EdnValue::Int(process)) => u64::try_from(*process)
                .map_err(|_| TestkitError::parse(FORMAT, position, "negative process"))?,
            Some(EdnValue::Keyword(_)) => continue,
            _ => return Err(TestkitError::parse(FORMAT, position, "op without :process")),
        };
        let value = map.get("value").unwrap_or(&EdnValue::Nil);
        match keyword(map, "type", position)? {
            "invoke" => {
                let input = parse_input(keyword(map, "f", position)?, value, position)?;
                pairing.invoke(process, input, time, position)?;
            }
            "ok" => {
                let open = pairing.complete(process, position)?;
                let output = match open.call {
                    RegisterInput::Read => CasRegisterOutput::Value(optional_int(value, position)?),
                    _ => CasRegisterOutput::Done,
                };
                operations.push(Operation {
                    process,
                    input: open.call,
                    output,
                    call_time: open.call_time,
                    return_time: Some(time),
                });
            }
            "fail" => {
                pairing.complete(process, position)?;
            }
            "info" => {
                let open = pairing.complete(process, position)?;
                pairing.invoke(process, open.call, open.call_time, position)?;
            }
            other => {
                return Err(TestkitError::parse(
                    FORMAT,
                    position,
                    format!("bad :type {other}"),
                ));
            }
        }
    }
    operations.extend(pairing.into_open().into_iter().map(|open| Operation {
        process: open.process,
        input: open.call,
        output: CasRegisterOutput::Unknown,
        call_time: open.call_time,
        return_time: None,
    }));
    Ok(operations)
}

/// The op maps: the one top-level vector or list (or nothing).
fn op_maps(forms: &[EdnValue]) -> Result<&[EdnValue], TestkitError> {
    match forms {
        [collection] => collection
            .as_seq()
            .ok_or_else(|| TestkitError::parse(FORMAT, 1, "history is not a vector or list")),
        [] => Ok(&[]),
        _ => Err(TestkitError::parse(
            FORMAT,
            1,
            "more than one top-level form",
        )),
    }
}

fn keyword<'a>(map: &'a EdnValue, key: &str, position: usize) -> Result<&'a str, TestkitError> {
    match map.get(key) {
        Some(EdnValue::Keyword(name)) => Ok(name),
        _ => Err(TestkitError::parse(
            FORMAT,
            position,
            format!("op without keyword :{key}"),
        )),
    }
}

fn parse_input(f: &str, value: &EdnValue, position: usize) -> Result<RegisterInput, TestkitError> {
    match (f, value) {
        ("read", _) => Ok(RegisterInput::Read),
        ("write", EdnValue::Int(value)) => Ok(RegisterInput::Write(*value)),
        ("cas", EdnValue::Vector(pair)) => match pair.as_slice() {
            [EdnValue::Int(from), EdnValue::Int(to)] => Ok(RegisterInput::Cas {
                from: *from,
                to: *to,
            }),
            _ => Err(TestkitError::parse(
                FORMAT,
                position,
                "cas value is not [from to]",
            )),
        },
        _ => Err(TestkitError::parse(
            FORMAT,
            position,
            format!("bad :f {f} with {value:?}"),
        )),
    }
}

fn optional_int(value: &EdnValue, position: usize) -> Result<Option<i64>, TestkitError> {
    match value {
        EdnValue::Nil => Ok(None),
        EdnValue::Int(value) => Ok(Some(*value)),
        other => Err(TestkitError::parse(
            FORMAT,
            position,
            format!("bad read value {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves fails are dropped, nemesis ops skipped and open calls indeterminate.
    #[test]
    fn applies_knossos_rules() {
        let text = "[{:process 0, :type :invoke, :f :cas, :value [0 1]}\n\
                    {:process :nemesis, :type :info, :f :start, :value nil}\n\
                    {:process 0, :type :fail, :f :cas, :value [0 1]}\n\
                    {:process 1, :type :invoke, :f :write, :value 3}]";
        let ops = parse_knossos_edn(text).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].input, RegisterInput::Write(3));
        assert!(ops[0].is_indeterminate());
    }
}
