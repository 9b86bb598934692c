//! A small EDN reader: enough of the format for Jepsen and Knossos histories.

use crate::error::TestkitError;

/// One EDN value. Maps keep their entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdnValue {
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    /// A keyword without its leading colon.
    Keyword(String),
    Symbol(String),
    List(Vec<EdnValue>),
    Vector(Vec<EdnValue>),
    Map(Vec<(EdnValue, EdnValue)>),
}

impl EdnValue {
    /// Reads every top-level form of `text`.
    pub fn parse_all(text: &str, format: &'static str) -> Result<Vec<EdnValue>, TestkitError> {
        let mut reader = Reader {
            chars: text.chars().collect(),
            position: 0,
            line: 1,
            format,
        };
        let mut forms = Vec::new();
        while reader.skip_blank() {
            forms.push(reader.value()?);
        }
        Ok(forms)
    }

    /// The value under keyword `key` if this is a map.
    pub fn get(&self, key: &str) -> Option<&EdnValue> {
        match self {
            EdnValue::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                EdnValue::Keyword(name) if name == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Elements of a list or vector.
    pub fn as_seq(&self) -> Option<&[EdnValue]> {
        match self {
            EdnValue::List(items) | EdnValue::Vector(items) => Some(items),
            _ => None,
        }
    }
}

struct Reader {
    chars: Vec<char>,
    position: usize,
    line: usize,
    format: &'static str,
}

impl Reader {
    fn error(&self, message: impl Into<String>) -> TestkitError {
        TestkitError::parse(self.format, self.line, message)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.position += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    /// Skips whitespace, commas and `;` comments; false at end of input.
    fn skip_blank(&mut self) -> bool {
        while let Some(c) = self.peek() {
            if c == ';' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() || c == ',' {
                self.bump();
            } else {
                return true;
            }
        }
        false
    }

    fn value(&mut self) -> Result<EdnValue, TestkitError> {
        if !self.skip_blank() {
            return Err(self.error("unexpected end of input"));
        }
        match self.peek().expect("skip_blank saw a char") {
            '(' => self.sequence(')').map(EdnValue::List),
            '[' => self.sequence(']').map(EdnValue::Vector),
            '{' => self.map(),
            '"' => self.string().map(EdnValue::Str),
            ':' => {
                self.bump();
                let name = self.token();
                if name.is_empty() {
                    return Err(self.error("empty keyword"));
                }
                Ok(EdnValue::Keyword(name))
            }
            c @ (')' | ']' | '}') => Err(self.error(format!("unexpected '{c}'"))),
            _ => self.atom(),
        }
    }

    fn sequence(&mut self, close: char) -> Result<Vec<EdnValue>, TestkitError> {
        self.bump();
        let mut items = Vec::new();
        loop {
            if !self.skip_blank() {
                return Err(self.error(format!("missing '{close}'")));
            }
            if self.peek() == Some(close) {
                self.bump();
                return Ok(items);
            }
            items.push(self.value()?);
        }
    }

    fn map(&mut self) -> Result<EdnValue, TestkitError> {
        let items = self.sequence('}')?;
        if items.len() % 2 != 0 {
            return Err(self.error("map with an odd number of forms"));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            entries.push((key, value));
        }
        Ok(EdnValue::Map(entries))
    }

    fn string(&mut self) -> Result<String, TestkitError> {
        self.bump();
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some('"') => return Ok(text),
                Some('\\') => text.push(match self.bump() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some(c @ ('"' | '\\')) => c,
                    other => return Err(self.error(format!("bad string escape {other:?}"))),
                }),
                Some(c) => text.push(c),
            }
        }
    }

    /// Reads up to the next delimiter.
    fn token(&mut self) -> String {
        let mut token = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '"')
            {
                break;
            }
            token.push(c);
            self.bump();
        }
        token
    }

    fn atom(&mut self) -> Result<EdnValue, TestkitError> {
        let token = self.token();
        match token.as_str() {
            "" => Err(self.error(format!("unexpected {:?}", self.peek()))),
            "nil" => Ok(EdnValue::Nil),
            "true" => Ok(EdnValue::Bool(true)),
            "false" => Ok(EdnValue::Bool(false)),
            _ if token.starts_with(|c: char| c.is_ascii_digit())
                || (token.len() > 1 && token.starts_with(['-', '+'])) =>
            {
                let digits = token.strip_suffix('N').unwrap_or(&token);
                digits
                    .parse()
                    .map(EdnValue::Int)
                    .map_err(|_| self.error(format!("unsupported number {token:?}")))
            }
            _ => Ok(EdnValue::Symbol(token)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves comments, commas, nesting, lists, escapes and nil are read as EDN.
    #[test]
    fn reads_jepsen_shapes() {
        let text = "; header\n({:process 22  :type :invoke,\n :value [1 [2 -3]]}\n \
                    {:error \"a {\\\"b\\\"} [\" :value nil, :x (:k nil)})";
        let forms = EdnValue::parse_all(text, "edn").unwrap();
        assert_eq!(forms.len(), 1);
        let ops = forms[0].as_seq().unwrap();
        assert!(matches!(forms[0], EdnValue::List(_)));
        assert_eq!(ops[0].get("process"), Some(&EdnValue::Int(22)));
        assert_eq!(
            ops[0].get("value"),
            Some(&EdnValue::Vector(vec![
                EdnValue::Int(1),
                EdnValue::Vector(vec![EdnValue::Int(2), EdnValue::Int(-3)])
            ]))
        );
        assert_eq!(
            ops[1].get("error"),
            Some(&EdnValue::Str("a {\"b\"} [".into()))
        );
        assert_eq!(ops[1].get("value"), Some(&EdnValue::Nil));
    }

    // Proves unbalanced input is an error naming the line, not a panic.
    #[test]
    fn rejects_unbalanced_input() {
        let error = EdnValue::parse_all("[{:a 1}\n", "edn").unwrap_err();
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
