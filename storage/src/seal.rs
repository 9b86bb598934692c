//! crc32 framing of stored values: `crc32(payload) as u32 LE ++ payload`.

use crate::StorageError;

const CRC_LEN: usize = 4;

/// Frames `payload` with its checksum.
pub(crate) fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(CRC_LEN + payload.len());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Verifies and strips the checksum; `what` and `key` name the value in errors.
pub(crate) fn unseal<'a>(
    stored: &'a [u8],
    what: &'static str,
    key: &[u8],
) -> Result<&'a [u8], StorageError> {
    let mismatch = || StorageError::Checksum {
        what,
        key: hex(key),
    };
    if stored.len() < CRC_LEN {
        return Err(mismatch());
    }
    let (crc, payload) = stored.split_at(CRC_LEN);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(payload) != expected {
        return Err(mismatch());
    }
    Ok(payload)
}

pub(crate) fn encode<T: serde::Serialize>(
    what: &'static str,
    v: &T,
) -> Result<Vec<u8>, StorageError> {
    let bytes = postcard::to_stdvec(v).map_err(|source| StorageError::Encode { what, source })?;
    Ok(seal(&bytes))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    key: &[u8],
    stored: &[u8],
) -> Result<T, StorageError> {
    let payload = unseal(stored, what, key)?;
    postcard::from_bytes(payload).map_err(|source| StorageError::Decode {
        what,
        key: hex(key),
        source,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A flipped bit anywhere in a sealed value is detected.
    #[test]
    fn every_single_bit_flip_is_detected() {
        let sealed = seal(b"debit 500 EUR");
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut damaged = sealed.clone();
                damaged[byte] ^= 1 << bit;
                assert!(unseal(&damaged, "test", b"k").is_err(), "flip {byte}:{bit}");
            }
        }
        assert_eq!(unseal(&sealed, "test", b"k").unwrap(), b"debit 500 EUR");
    }
}
