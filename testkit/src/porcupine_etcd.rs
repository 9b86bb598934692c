//! Reader for porcupine's jepsen etcd logs (`INFO jepsen.util - <process> <type> <f> <value>`).

use crate::call_pairing::CallPairing;
use crate::error::TestkitError;
use crate::etcd_model::EtcdOutput;
use crate::operation::Operation;
use crate::register_input::RegisterInput;

const FORMAT: &str = "porcupine-etcd";

/// Parses a whole log; the line number is the time. `:info` calls stay open
/// (indeterminate); a refused cas is an observation; a timed-out read
/// completes with an unknown result; a failed write (never seen) did not happen.
pub fn parse_porcupine_etcd(
    text: &str,
) -> Result<Vec<Operation<RegisterInput, EtcdOutput>>, TestkitError> {
    let mut pairing = CallPairing::new(FORMAT);
    let mut operations = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let time = line_number as u64;
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        if tokens.len() < 7 || tokens[..3] != ["INFO", "jepsen.util", "-"] {
            return Err(TestkitError::parse(
                FORMAT,
                line_number,
                "not a jepsen.util line",
            ));
        }
        let process: u64 = tokens[3]
            .parse()
            .map_err(|_| TestkitError::parse(FORMAT, line_number, "bad process"))?;
        let value = tokens[6..].join(" ");
        if tokens[4] == ":invoke" {
            let input = parse_input(tokens[5], &value, line_number)?;
            pairing.invoke(process, input, time, line_number)?;
            continue;
        }
        let open = pairing.complete(process, line_number)?;
        let output = match (tokens[4], open.call) {
            (":ok", RegisterInput::Read) => EtcdOutput::Value(parse_optional(&value, line_number)?),
            (":ok", _) => EtcdOutput::Done,
            (":fail", RegisterInput::Cas { .. }) => EtcdOutput::CasRefused,
            (":fail", RegisterInput::Read) => EtcdOutput::Unknown,
            (":fail", RegisterInput::Write(_)) => continue,
            (":info", _) => {
                pairing.invoke(process, open.call, open.call_time, line_number)?;
                continue;
            }
            (other, _) => {
                return Err(TestkitError::parse(
                    FORMAT,
                    line_number,
                    format!("bad type {other}"),
                ));
            }
        };
        operations.push(Operation {
            process,
            input: open.call,
            output,
            call_time: open.call_time,
            return_time: Some(time),
        });
    }
    operations.extend(pairing.into_open().into_iter().map(|open| Operation {
        process: open.process,
        input: open.call,
        output: EtcdOutput::Unknown,
        call_time: open.call_time,
        return_time: None,
    }));
    Ok(operations)
}

fn parse_input(f: &str, value: &str, line: usize) -> Result<RegisterInput, TestkitError> {
    match f {
        ":read" => Ok(RegisterInput::Read),
        ":write" => parse_int(value, line).map(RegisterInput::Write),
        ":cas" => {
            let inner = value
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .ok_or_else(|| TestkitError::parse(FORMAT, line, "cas value is not [A B]"))?;
            let (from, to) = inner
                .split_once(' ')
                .ok_or_else(|| TestkitError::parse(FORMAT, line, "cas value is not [A B]"))?;
            Ok(RegisterInput::Cas {
                from: parse_int(from, line)?,
                to: parse_int(to, line)?,
            })
        }
        other => Err(TestkitError::parse(FORMAT, line, format!("bad f {other}"))),
    }
}

fn parse_optional(value: &str, line: usize) -> Result<Option<i64>, TestkitError> {
    if value == "nil" {
        Ok(None)
    } else {
        parse_int(value, line).map(Some)
    }
}

fn parse_int(value: &str, line: usize) -> Result<i64, TestkitError> {
    value
        .trim()
        .parse()
        .map_err(|_| TestkitError::parse(FORMAT, line, format!("bad integer {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves tab- and space-separated lines parse, and :info calls stay open.
    #[test]
    fn parses_lines_and_leaves_info_open() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 1   :invoke   :write   2\n\
                    INFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 1   :info   :write   :timed-out\n";
        let ops = parse_porcupine_etcd(text).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].input, RegisterInput::Cas { from: 3, to: 0 });
        assert_eq!(ops[0].output, EtcdOutput::CasRefused);
        assert_eq!(ops[1].input, RegisterInput::Write(2));
        assert_eq!(ops[1].return_time, None);
    }
}
