//! Restoring a group from a backup (a snapshot file made by `ctl backup`)
//! into a node's empty store, so that openraft starts from it: the rows and
//! applied position installed, the log empty but purged up to the applied
//! position, and a vote in the backup's last term so that the next leader's
//! entries carry a greater term than every entry the backup reflects.

use std::io;
use std::path::Path;

use geowallet_storage::{Db, Engine, GroupId};
use openraft::alias::VoteOf;

use crate::codec::{encode, storage_io};
use crate::{AppliedState, TypeConfig};

/// Installs the snapshot file at `file` as group `group`'s state in `db`
/// (verified first: checksums, the group, balanced books) and sets its log
/// as if openraft had purged it up to the applied position. `node` is the
/// id of the node whose store `db` is. The group's log must be empty: a
/// restore never replaces a running replica's state.
pub fn restore_group<E: Engine>(
    db: &Db<E>,
    group: GroupId,
    file: &Path,
    node: u64,
) -> Result<AppliedState, io::Error> {
    let log = db.log_store(group);
    if log.read_vote().map_err(storage_io)?.is_some() || log.last().map_err(storage_io)?.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "group {group} already has a vote or log entries in this store: restore only \
                 into a new, empty data dir"
            ),
        ));
    }
    let applied = db
        .state_store(group)
        .install_snapshot(file)
        .map_err(storage_io)?;
    let applied = AppliedState::from_stored(Some(&applied))?;
    let Some(last) = applied.last_applied else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the backup of group {group} at {} reflects no applied entry",
                file.display()
            ),
        ));
    };
    log.save_committed(&encode(&Some(last))?)
        .map_err(storage_io)?;
    log.purge_upto(last.index, &encode(&last)?)
        .map_err(storage_io)?;
    // Last, and synced (so are the writes before it): a vote in the
    // backup's term, for no one yet to win; elections go on from there.
    let vote = VoteOf::<TypeConfig>::new(last.leader_id.term, node);
    log.save_vote(&encode(&vote)?).map_err(storage_io)?;
    Ok(applied)
}
