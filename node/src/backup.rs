//! Backups and restores of a whole cluster.
//!
//! `ctl backup --to DIR` asks each group's leader (the directory's too) for
//! a consistent copy of the group: the leader confirms a read index, so the
//! copy holds every write acknowledged before it was asked for, and streams
//! a checkpoint of the group as a snapshot file. Each file is checked
//! (checksums, the group, balanced books) before it is kept as
//! `DIR/group-<id>.snap`; `DIR/manifest.json` lists them with their
//! SHA-256, applied position and voters, and the cluster's nodes.
//!
//! `geowallet restore --from DIR` checks every file against the manifest
//! before it writes anything, then installs each group into the new data
//! dir of every node that hosts it (`geowallet_raft::restore_group`), so
//! the new cluster starts from the backup's positions.
//!
//! Each group is copied at its own index, one after another: a wallet
//! moving between groups while the backup runs may be caught on both sides
//! of its move, or on neither (ARCHITECTURE.md, "Backup and restore").

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use geowallet_client::{BackupOf, Client};
use geowallet_storage::GroupId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{GroupConfig, NodeConfig, RaftTuning};
use crate::dual_dc::DualDcPolicy;
use crate::local_cluster::{LocalCluster, Topology};

/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;
/// Attempts per group before a backup gives up (a stream cut by a leader
/// change starts over).
const ATTEMPTS: u32 = 5;

/// `DIR/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// When the backup finished (the taker's clock, ns since the epoch).
    pub created_at_ns: u64,
    /// The cluster's nodes as the backup found them.
    pub nodes: Vec<ManifestNode>,
    /// Every group, the directory (id 0) first when the cluster has one.
    pub groups: Vec<ManifestGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestNode {
    pub id: u64,
    pub region: String,
    pub dc: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestGroup {
    /// Shard group id; 0 is the directory.
    pub id: u64,
    pub home_region: String,
    pub dual_dc: DualDcPolicy,
    /// The group's voters at the backup's position.
    pub voters: Vec<u64>,
    /// The snapshot file, relative to the backup directory.
    pub file: String,
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    pub rows: u64,
    /// The Raft position the copy reflects: everything acknowledged before
    /// the backup asked for it is at or below it.
    pub applied_index: u64,
    pub applied_term: u64,
}

/// Why a backup failed: a call the cluster refused or could not serve, or
/// a local file.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Call(#[from] geowallet_client::Error),
    #[error("{0}")]
    Local(String),
}

fn local(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> BackupError {
    move |e| BackupError::Local(format!("{context}: {e}"))
}

/// Backs up every group of the cluster `client` reaches into `to` (created
/// if missing; must not hold a manifest yet). `progress` gets one line per
/// group.
pub async fn take(
    client: &Client,
    to: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Manifest, BackupError> {
    if to.join(MANIFEST).exists() {
        return Err(BackupError::Local(format!(
            "{} already holds a backup ({MANIFEST}): back up into a new directory",
            to.display()
        )));
    }
    let (nodes, groups) = cluster_groups(client).await?;
    std::fs::create_dir_all(to).map_err(local(format!("create {}", to.display())))?;
    let mut manifest = Manifest {
        format: FORMAT,
        created_at_ns: 0,
        nodes,
        groups: Vec::new(),
    };
    for (id, status) in groups {
        let of = if id == GroupId::DIRECTORY.0 {
            BackupOf::Directory
        } else {
            BackupOf::Group(id)
        };
        let file = format!("group-{id}.snap");
        let mut attempt = 0;
        let kept = loop {
            attempt += 1;
            match copy_group(client, of, &to.join(&file)).await {
                Ok(kept) => break kept,
                Err(BackupError::Call(
                    e @ (geowallet_client::Error::Unavailable { .. }
                    | geowallet_client::Error::Protocol { .. }),
                )) if attempt < ATTEMPTS => {
                    progress(&format!("{of}: {e}; starting it again"));
                }
                Err(e) => return Err(e),
            }
        };
        progress(&format!(
            "{of}: {} bytes, {} rows at log index {} (term {})",
            kept.bytes, kept.rows, kept.applied_index, kept.applied_term
        ));
        manifest.groups.push(ManifestGroup {
            id,
            home_region: status.home_region,
            dual_dc: status.dual_dc,
            voters: kept.voters,
            file,
            bytes: kept.bytes,
            sha256: kept.sha256,
            rows: kept.rows,
            applied_index: kept.applied_index,
            applied_term: kept.applied_term,
        });
    }
    manifest.created_at_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| BackupError::Local(format!("encode the manifest: {e}")))?;
    let part = to.join(format!("{MANIFEST}.part"));
    write_synced(&part, text.as_bytes()).map_err(local(format!("write {}", part.display())))?;
    geowallet_storage::rename_durably(&part, &to.join(MANIFEST))
        .map_err(|e| BackupError::Local(e.to_string()))?;
    Ok(manifest)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

struct GroupFacts {
    home_region: String,
    dual_dc: DualDcPolicy,
}

/// The cluster's nodes and groups, from every node's status (a node lists
/// only the groups it hosts).
async fn cluster_groups(
    client: &Client,
) -> Result<
    (
        Vec<ManifestNode>,
        std::collections::BTreeMap<u64, GroupFacts>,
    ),
    BackupError,
> {
    let mut first = None;
    let mut last_error = None;
    for endpoint in client.seeds() {
        match client.status_of(endpoint).await {
            Ok(s) => {
                first = Some(s);
                break;
            }
            Err(e @ geowallet_client::Error::PermissionDenied { .. }) => return Err(e.into()),
            Err(e) => last_error = Some(e),
        }
    }
    let Some(first) = first else {
        return Err(geowallet_client::Error::Unavailable {
            message: format!(
                "no node answered its status ({}): check the endpoints",
                last_error.map_or_else(String::new, |e| e.to_string())
            ),
        }
        .into());
    };
    let nodes: Vec<ManifestNode> = first
        .nodes
        .iter()
        .map(|n| ManifestNode {
            id: n.id,
            region: n.region.clone(),
            dc: n.dc.clone(),
        })
        .collect();
    let mut groups = std::collections::BTreeMap::new();
    let mut add = |s: &geowallet_client::Status| {
        for g in &s.groups {
            groups.entry(g.id).or_insert_with(|| GroupFacts {
                home_region: g.home_region.clone(),
                dual_dc: if g.dual_dc == "strict" {
                    DualDcPolicy::Strict
                } else {
                    DualDcPolicy::Available
                },
            });
        }
    };
    add(&first);
    for n in &first.nodes {
        if n.id == first.node_id {
            continue;
        }
        // A node that does not answer hosts no group the others do not:
        // every group has a quorum elsewhere, or its backup fails anyway.
        if let Ok(s) = client.status_of(&n.endpoint).await {
            add(&s);
        }
    }
    Ok((nodes, groups))
}

/// What one group's kept file holds.
struct Kept {
    bytes: u64,
    sha256: String,
    rows: u64,
    applied_index: u64,
    applied_term: u64,
    voters: Vec<u64>,
}

/// Receives `of`'s backup into `dest` (through `dest.part`), synced and
/// checked before it gets its name.
async fn copy_group(client: &Client, of: BackupOf, dest: &Path) -> Result<Kept, BackupError> {
    let part = dest.with_extension("snap.part");
    let mut stream = client.backup(of).await?;
    let file = std::fs::File::create(&part).map_err(local(format!("create {}", part.display())))?;
    let mut out = std::io::BufWriter::new(file);
    let mut sha = Sha256::new();
    while let Some(piece) = stream.next().await? {
        sha.update(&piece);
        out.write_all(&piece)
            .map_err(local(format!("write {}", part.display())))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| BackupError::Local(format!("write {}: {}", part.display(), e.error())))?;
    file.sync_all()
        .map_err(local(format!("sync {}", part.display())))?;
    let group = match of {
        BackupOf::Directory => GroupId::DIRECTORY,
        BackupOf::Group(g) => GroupId(g),
    };
    let check = part.clone();
    let info =
        tokio::task::spawn_blocking(move || geowallet_storage::verify_snapshot(&check, group))
            .await
            .map_err(|e| BackupError::Local(e.to_string()))?
            .map_err(|e| {
                BackupError::Local(format!("the backup of {of} does not check out: {e}"))
            })?;
    let applied = geowallet_raft::AppliedState::from_stored(Some(&info.applied))
        .map_err(|e| BackupError::Local(format!("the backup of {of}: {e}")))?;
    let Some(last) = applied.last_applied else {
        return Err(BackupError::Local(format!(
            "the backup of {of} reflects no applied entry (a group that never started?)"
        )));
    };
    geowallet_storage::rename_durably(&part, dest)
        .map_err(|e| BackupError::Local(e.to_string()))?;
    Ok(Kept {
        bytes: info.size_bytes,
        sha256: hex(&sha.finalize()),
        rows: info.rows,
        applied_index: last.index,
        applied_term: last.leader_id.term,
        voters: applied.membership.membership().voter_ids().collect(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads `DIR/manifest.json` and checks every file it lists: its size and
/// SHA-256 against the manifest, then its own checksums, group and books.
/// Nothing is restored from a backup that fails any check.
pub fn verify(from: &Path) -> anyhow::Result<Manifest> {
    let path = from.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("read {}: is {} a backup?", path.display(), from.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} does not parse", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} has format {}; this build reads format {FORMAT}",
            path.display(),
            manifest.format
        );
    }
    if manifest.groups.is_empty() {
        bail!("{} lists no group", path.display());
    }
    for g in &manifest.groups {
        let file = from.join(&g.file);
        if Path::new(&g.file).components().count() != 1 {
            bail!(
                "{}: file name {:?} leaves the backup directory",
                path.display(),
                g.file
            );
        }
        let bytes = std::fs::read(&file).with_context(|| format!("read {}", file.display()))?;
        if bytes.len() as u64 != g.bytes {
            bail!(
                "{} has {} bytes, the manifest says {}: the backup is damaged",
                file.display(),
                bytes.len(),
                g.bytes
            );
        }
        let sha = hex(&Sha256::digest(&bytes));
        if sha != g.sha256 {
            bail!(
                "{} does not match its SHA-256 in the manifest ({sha}, expected {}): the backup \
                 is damaged; restore from another copy",
                file.display(),
                g.sha256
            );
        }
        let info = geowallet_storage::verify_snapshot(&file, GroupId(g.id))
            .with_context(|| format!("{} does not check out", file.display()))?;
        let applied = geowallet_raft::AppliedState::from_stored(Some(&info.applied))?;
        if applied.index() != g.applied_index {
            bail!(
                "{} is at log index {}, the manifest says {}",
                file.display(),
                applied.index(),
                g.applied_index
            );
        }
    }
    Ok(manifest)
}

/// The groups `config`'s node hosts (the directory as id 0).
fn hosted(config: &NodeConfig) -> Vec<(u64, Vec<u64>)> {
    let mut out: Vec<(u64, Vec<u64>)> = Vec::new();
    if let Some(r) = config.directory_replicas() {
        out.push((GroupId::DIRECTORY.0, r));
    }
    out.extend(config.groups().into_iter().map(|g| (g.id, g.replicas)));
    out.retain(|(_, replicas)| replicas.contains(&config.node_id));
    out
}

/// Installs the groups `config`'s node hosts from the backup at `from`
/// (checked by [`verify`]) into its data dir, which must not hold a store
/// yet. Returns (group, applied index) of each.
pub fn restore_node(
    from: &Path,
    manifest: &Manifest,
    config: &NodeConfig,
) -> anyhow::Result<Vec<(u64, u64)>> {
    let data = &config.data_dir;
    if std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty: a restore writes a new node's store; give it a new data dir",
            data.display()
        );
    }
    let mut plan = Vec::new();
    for (id, replicas) in hosted(config) {
        let Some(g) = manifest.groups.iter().find(|g| g.id == id) else {
            bail!(
                "node {} hosts group {id}, which the backup does not have (it has {:?})",
                config.node_id,
                manifest.groups.iter().map(|g| g.id).collect::<Vec<_>>()
            );
        };
        let (mut want, mut have) = (replicas.clone(), g.voters.clone());
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            bail!(
                "group {id}: the config names voters {want:?}, the backup's membership {have:?}; \
                 restore into a cluster of the backup's shape"
            );
        }
        plan.push(g);
    }
    let db_dir = config.db_dir();
    std::fs::create_dir_all(&db_dir)?;
    let db = geowallet_storage::Db::open(&db_dir)
        .with_context(|| format!("open a new store at {}", db_dir.display()))?;
    let staging = data.join("restore");
    std::fs::create_dir_all(&staging)?;
    let mut done = Vec::new();
    for g in plan {
        // Installing writes table files beside the snapshot: a copy in
        // the node's own dir leaves the backup untouched.
        let copy = staging.join(&g.file);
        std::fs::copy(from.join(&g.file), &copy)
            .with_context(|| format!("copy {} into {}", g.file, staging.display()))?;
        let applied = geowallet_raft::restore_group(&db, GroupId(g.id), &copy, config.node_id)
            .with_context(|| format!("node {}: restore group {}", config.node_id, g.id))?;
        done.push((g.id, applied.index()));
    }
    std::fs::remove_dir_all(&staging)?;
    Ok(done)
}

/// A new local cluster (like `geowallet dev`'s: processes on 127.0.0.1,
/// fresh ports and certificates) in the backup's shape, each node's store
/// restored from it; not started. Checks the whole backup first.
pub fn restore_local(
    binary: &Path,
    from: &Path,
    dir: &Path,
    tuning: RaftTuning,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<LocalCluster> {
    let manifest = verify(from)?;
    progress(&format!(
        "{}: {} groups checked (sizes, SHA-256, frames, books)",
        from.display(),
        manifest.groups.len()
    ));
    if dir.join("cluster.json").exists() {
        bail!(
            "{} already holds a cluster: restore into a new directory",
            dir.display()
        );
    }
    let topology = topology_of(&manifest)?;
    let cluster = LocalCluster::prepare_topology(binary, dir, &topology, tuning)?;
    for node in &cluster.nodes {
        let config = NodeConfig::load(&node.config_path())?;
        for (group, index) in restore_node(from, &manifest, &config)? {
            progress(&format!(
                "node {}: group {group} restored at log index {index}",
                node.id
            ));
        }
    }
    Ok(cluster)
}

/// The local cluster shape of a backup: its nodes (ids 1..=n) and groups.
fn topology_of(manifest: &Manifest) -> anyhow::Result<Topology> {
    let mut nodes = manifest.nodes.clone();
    nodes.sort_by_key(|n| n.id);
    if nodes.iter().enumerate().any(|(i, n)| n.id != i as u64 + 1) {
        bail!(
            "a local restore numbers nodes 1..=n; the backup's are {:?}: restore each node \
             with `geowallet restore --config` instead",
            nodes.iter().map(|n| n.id).collect::<Vec<_>>()
        );
    }
    let has_directory = manifest.groups.iter().any(|g| g.id == GroupId::DIRECTORY.0);
    let groups: Vec<GroupConfig> = if has_directory {
        manifest
            .groups
            .iter()
            .filter(|g| g.id != GroupId::DIRECTORY.0)
            .map(|g| GroupConfig {
                id: g.id,
                home_region: g.home_region.clone(),
                replicas: g.voters.clone(),
                dual_dc: g.dual_dc,
            })
            .collect()
    } else {
        // One group and no directory: the single-group shape (group 1).
        if manifest.groups.len() != 1 || manifest.groups[0].id != 1 {
            bail!("a backup without a directory group must hold exactly group 1");
        }
        Vec::new()
    };
    Ok(Topology {
        nodes: nodes.into_iter().map(|n| (n.region, n.dc)).collect(),
        groups,
    })
}
