//! A bit flipped in the write-ahead log of a closed database.

use geowallet_storage::{Batch, Cf, Db, Engine, EngineView};

const WRITES: u32 = 64;

fn key(n: u32) -> Vec<u8> {
    format!("wal-damage-{n:04}").into_bytes()
}

/// Writes `WRITES` synced batches (each acknowledged once durable, as a
/// Raft append is) and closes the database without flushing them to a
/// table: they live only in the write-ahead log.
fn write_acknowledged(path: &std::path::Path) {
    let db = Db::open(path).expect("open");
    for n in 0..WRITES {
        let mut batch = Batch::default();
        batch.put(Cf::Meta, key(n), vec![n as u8; 512]);
        db.engine().write(batch, true).expect("synced write");
    }
}

/// Flips one bit a quarter into the database's write-ahead log.
fn flip_a_bit_in_the_wal(path: &std::path::Path) {
    let wal = std::fs::read_dir(path)
        .expect("list the db")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a write-ahead log");
    let mut bytes = std::fs::read(&wal).expect("read the wal");
    assert!(bytes.len() > 4 * 512, "the writes are in the log");
    let at = bytes.len() / 4;
    bytes[at] ^= 0x10;
    std::fs::write(&wal, bytes).expect("write the wal back");
}

// Proves a flipped bit inside the write-ahead log makes the database refuse
// to open with a corruption error, instead of opening without every
// acknowledged write after the damaged record (RocksDB's default
// point-in-time recovery silently drops them: for a Raft voter, log entries
// and votes it already acknowledged).
#[test]
fn a_flipped_bit_inside_the_wal_fails_open_instead_of_dropping_acknowledged_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    write_acknowledged(&path);
    flip_a_bit_in_the_wal(&path);
    match Db::open(&path) {
        Err(e) => assert!(
            e.to_string().contains("Corruption"),
            "a detected corruption, said so: {e}"
        ),
        Ok(db) => {
            let missing: Vec<u32> = (0..WRITES)
                .filter(|n| db.engine().get(Cf::Meta, &key(*n)).expect("read").is_none())
                .collect();
            panic!(
                "opened without {} acknowledged writes: {missing:?}",
                missing.len()
            );
        }
    }
}

// Proves a write-ahead log whose last record was cut short (a crash in the
// middle of an unacknowledged write) still opens, with every acknowledged
// write.
#[test]
fn a_torn_tail_of_the_wal_still_opens_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    write_acknowledged(&path);
    let wal = std::fs::read_dir(&path)
        .expect("list the db")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "log"))
        .expect("a write-ahead log");
    // A half-written record at the end: a header promising more bytes than follow.
    let mut bytes = std::fs::read(&wal).expect("read the wal");
    bytes.extend_from_slice(&[0xAB, 0xCD, 0xEF, 0x01, 0xFF, 0x7F, 0x01, 0x00, 0x00, 0x00]);
    std::fs::write(&wal, bytes).expect("write the wal back");
    let db = Db::open(&path).expect("a torn tail is a crash, not damage");
    for n in 0..WRITES {
        assert!(
            db.engine().get(Cf::Meta, &key(n)).expect("read").is_some(),
            "acknowledged write {n} kept"
        );
    }
}
