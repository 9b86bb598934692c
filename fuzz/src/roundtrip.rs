//! The check every target makes of a decoder: bad bytes are a typed error,
//! and what decodes survives encoding and decoding again unchanged.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `bytes` as a protobuf message `M`; when it decodes, its encoding
/// decodes to the same message.
pub fn prost_message<M: prost::Message + Default + PartialEq + Debug>(bytes: &[u8]) -> Option<M> {
    let message = M::decode(bytes).ok()?;
    let again =
        M::decode(message.encode_to_vec().as_slice()).expect("a re-encoded message decodes");
    assert_eq!(again, message, "protobuf round trip changed the message");
    Some(message)
}

/// Decodes `bytes` as the Raft layer's codec does (postcard); a failure must
/// be `InvalidData`, and what decodes must round-trip to an equal value.
pub fn postcard_value<T>(what: &str, bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let value: T = decode(what, bytes)?;
    assert_eq!(
        reencoded::<T>(what, &value),
        value,
        "{what}: round trip changed the value"
    );
    Some(value)
}

/// [`postcard_value`] for types without `PartialEq`: encoding what decodes
/// is a fixed point (encode, decode, encode gives the same bytes).
pub fn postcard_fixed_point<T: Serialize + DeserializeOwned>(
    what: &str,
    bytes: &[u8],
) -> Option<T> {
    let value: T = decode(what, bytes)?;
    let first = geowallet_raft::encode(&value).expect("a decoded value encodes");
    let again: T = geowallet_raft::decode(what, &first).expect("a re-encoded value decodes");
    let second = geowallet_raft::encode(&again).expect("a decoded value encodes");
    assert_eq!(first, second, "{what}: encoding is not a fixed point");
    Some(value)
}

/// Encodes `value` and decodes it again.
pub fn reencoded<T: Serialize + DeserializeOwned>(what: &str, value: &T) -> T {
    let bytes = geowallet_raft::encode(value).expect("a value encodes");
    geowallet_raft::decode(what, &bytes).expect("an encoded value decodes")
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Option<T> {
    match geowallet_raft::decode(what, bytes) {
        Ok(value) => Some(value),
        Err(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{what}: {e}");
            None
        }
    }
}
