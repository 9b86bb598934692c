//! Encoding of Raft structures for disk and wire (postcard).

use std::io;

/// Encodes `v`; an encoding failure is reported as an i/o error.
pub fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, io::Error> {
    postcard::to_stdvec(v)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("encode: {e}")))
}

/// The length of `v` encoded, without encoding it into memory.
pub fn encoded_len<T: serde::Serialize>(v: &T) -> Result<usize, io::Error> {
    postcard::serialize_with_flavor(v, postcard::ser_flavors::Size::default())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("encode: {e}")))
}

/// Decodes `bytes` as `T`; damaged input is an `InvalidData` error, never a panic.
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, io::Error> {
    postcard::from_bytes(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("decode {what}: {e}")))
}

pub(crate) fn storage_io(err: geowallet_storage::StorageError) -> io::Error {
    let kind = if err.is_corruption() {
        io::ErrorKind::InvalidData
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, err)
}
