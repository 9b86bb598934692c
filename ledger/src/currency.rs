use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::InvalidInput;

/// Shortest accepted currency code, in characters.
const CURRENCY_LEN_MIN: usize = 3;
/// Longest accepted currency code, in characters.
const CURRENCY_LEN_MAX: usize = 8;

/// A currency code: 3..=8 characters of `[A-Z0-9]`, the first one `A-Z`.
///
/// Stored inline, NUL-padded, so it is `Copy` and orders like its text.
/// Serialized as its text and validated again when deserialized, so a
/// decoded `Currency` always satisfies the rule.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; CURRENCY_LEN_MAX]);

impl Currency {
    pub fn parse(s: &str) -> Result<Currency, InvalidInput> {
        let bytes = s.as_bytes();
        let len_ok = (CURRENCY_LEN_MIN..=CURRENCY_LEN_MAX).contains(&bytes.len());
        let first_ok = bytes.first().is_some_and(u8::is_ascii_uppercase);
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !(len_ok && first_ok && rest_ok) {
            return Err(InvalidInput::Currency(s.to_owned()));
        }
        let mut code = [0u8; CURRENCY_LEN_MAX];
        code[..bytes.len()].copy_from_slice(bytes);
        Ok(Currency(code))
    }

    pub fn as_str(&self) -> &str {
        let len = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(CURRENCY_LEN_MAX);
        // Only `parse` builds a Currency, and it admits ASCII alone.
        std::str::from_utf8(&self.0[..len]).expect("currency code is ASCII")
    }

    /// Number of decimal places of the minor unit. For display only: the
    /// ledger itself counts minor units and never converts.
    pub fn exponent(&self) -> u8 {
        match self.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "XAF" | "XOF" | "PYG" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
            "USDT" | "USDC" => 6,
            "BTC" | "LTC" => 8,
            "ETH" => 18,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Currency, InvalidInput> {
        Currency::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = InvalidInput;

    fn try_from(s: String) -> Result<Currency, InvalidInput> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves valid codes round-trip through parse/as_str/Display/FromStr.
    #[test]
    fn parses_valid_codes() {
        for s in ["EUR", "USDT", "BTC", "A1B2C3D4", "X00"] {
            let c = Currency::parse(s).unwrap();
            assert_eq!(c.as_str(), s);
            assert_eq!(c.to_string(), s);
            assert_eq!(s.parse::<Currency>().unwrap(), c);
        }
    }

    // Proves every rule of the syntax is enforced.
    #[test]
    fn rejects_invalid_codes() {
        for s in ["", "EU", "eur", "1EU", "EUR€", "ABCDEFGHI", "EU R", "EUR\0"] {
            assert_eq!(
                Currency::parse(s),
                Err(InvalidInput::Currency(s.to_owned())),
                "{s:?}"
            );
        }
    }

    // Proves the order of currencies is the order of their text.
    #[test]
    fn orders_like_text() {
        let eur = Currency::parse("EUR").unwrap();
        let euro = Currency::parse("EURO").unwrap();
        let usd = Currency::parse("USD").unwrap();
        assert!(eur < euro && euro < usd);
    }

    // Proves the exponent table and its default.
    #[test]
    fn exponents() {
        let e = |s: &str| Currency::parse(s).unwrap().exponent();
        assert_eq!(
            (e("EUR"), e("JPY"), e("KRW"), e("BTC"), e("ETH"), e("KWD")),
            (2, 0, 0, 8, 18, 3)
        );
    }

    // Proves deserialization validates instead of trusting the bytes.
    #[test]
    fn deserialize_validates() {
        let ok: Result<Currency, _> = Currency::try_from("GBP".to_owned());
        assert!(ok.is_ok());
        let bad: Result<Currency, _> = Currency::try_from("gbp".to_owned());
        assert!(bad.is_err());
    }
}
