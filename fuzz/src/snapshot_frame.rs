//! The snapshot stream format (`geowallet_storage`'s `snapshot_file`), as
//! the `snapshot` target writes files from frames the fuzzer chose: `MAGIC`,
//! then frames of `len u32 LE, crc32 u32 LE, body`, each body a postcard
//! `Frame`, each row value sealed (`crc32 u32 LE ++ payload`). Storage keeps
//! its frame types private; these mirror them shape for shape (postcard
//! encodes shapes, not names). `seed_corpus` reads a real snapshot file
//! with [`read`] and writes it back with [`write`], and stops unless the
//! bytes are identical: a change of the format shows there.

use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 8] = b"GWSNAP01";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    Header { group: u64, applied: Vec<u8> },
    Rows(Vec<Row>),
    End { rows: u64 },
}

/// A row with its value unsealed: [`write`] seals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub journal: bool,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A snapshot file of `frames`, every checksum right.
pub fn write(frames: &[Frame]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for frame in frames {
        let sealed = match frame {
            Frame::Rows(rows) => Frame::Rows(
                rows.iter()
                    .map(|r| Row {
                        value: seal(&r.value),
                        ..r.clone()
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        let body = postcard::to_stdvec(&sealed).expect("a frame encodes");
        let len = u32::try_from(body.len()).expect("a frame under 4 GiB");
        out.extend(len.to_le_bytes());
        out.extend(crc32fast::hash(&body).to_le_bytes());
        out.extend(body);
    }
    out
}

/// The frames of a snapshot file, row values unsealed; `None` unless every
/// checksum is right and nothing follows the frames.
pub fn read(mut bytes: &[u8]) -> Option<Vec<Frame>> {
    bytes = bytes.strip_prefix(MAGIC)?;
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
        let body = bytes.get(8..8 + len)?;
        if crc32fast::hash(body) != crc {
            return None;
        }
        let frame = match postcard::from_bytes(body).ok()? {
            Frame::Rows(rows) => Frame::Rows(
                rows.into_iter()
                    .map(|r| {
                        Some(Row {
                            value: unseal(&r.value)?,
                            ..r
                        })
                    })
                    .collect::<Option<_>>()?,
            ),
            other => other,
        };
        frames.push(frame);
        bytes = &bytes[8 + len..];
    }
    Some(frames)
}

fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = crc32fast::hash(payload).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn unseal(stored: &[u8]) -> Option<Vec<u8>> {
    let (crc, payload) = stored.split_at_checked(4)?;
    let ok = crc32fast::hash(payload).to_le_bytes() == crc;
    ok.then(|| payload.to_vec())
}
