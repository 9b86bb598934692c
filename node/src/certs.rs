//! Certificates for a cluster: a CA, one certificate per node and one per
//! client identity, as PEM files in one directory (`geowallet certs`, and
//! the throwaway set `geowallet dev` writes to `DIR/tls/`).
//!
//! Files: `ca.pem` and `ca.key` (the CA; keep `ca.key` off the nodes in a
//! real deployment), `node-<id>.pem`/`.key` (common name and DNS name
//! `node-<id>`, plus the hosts it is reached at; usable as server and as
//! client), `<name>.pem`/`.key` for clients (common name `<name>`, client
//! use only). An existing CA is reused, so reissuing a node's certificate
//! (rotation) keeps the cluster's trust.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::tls::node_name;

/// The client identities `geowallet dev` issues, one per role.
pub const ROLES: [&str; 5] = ["root", "game", "payments", "ops", "auditor"];

/// A certificate directory's CA, read or made.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    // A rename, so a node reloading on change never reads half a file.
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))
}

impl Ca {
    /// The CA in `dir` (`ca.pem`, `ca.key`), made when there is none.
    pub fn open_or_create(dir: &Path, cluster_name: &str) -> anyhow::Result<Ca> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        if cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path)
                .with_context(|| format!("read the CA key {}", key_path.display()))?;
            let key = KeyPair::from_pem(&key_pem)
                .with_context(|| format!("parse the CA key {}", key_path.display()))?;
            let cert_pem = std::fs::read_to_string(&cert_path)
                .with_context(|| format!("read {}", cert_path.display()))?;
            let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
                .with_context(|| format!("use {} as the CA", cert_path.display()))?;
            return Ok(Ca { issuer });
        }
        let key = KeyPair::generate().context("generate the CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{cluster_name} CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key)
            .context("sign the CA certificate")?;
        write_private(&key_path, &key.serialize_pem())?;
        std::fs::write(&cert_path, cert.pem())
            .with_context(|| format!("write {}", cert_path.display()))?;
        Ok(Ca {
            issuer: Issuer::new(params, key),
        })
    }

    fn issue(
        &self,
        dir: &Path,
        name: &str,
        hosts: &[String],
        usage: &[ExtendedKeyUsagePurpose],
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate().context("generate a key")?;
        let mut params = CertificateParams::new(hosts.to_vec())
            .with_context(|| format!("certificate names {hosts:?}"))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usage.to_vec();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("sign the certificate of {name}"))?;
        let (cert_path, key_path) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        // Key first: a node that reloads between the two writes sees a new
        // key with the old certificate, fails to load it and keeps the old
        // pair until the certificate lands.
        write_private(&key_path, &key.serialize_pem())?;
        let tmp = cert_path.with_extension("tmp");
        std::fs::write(&tmp, cert.pem()).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &cert_path)
            .with_context(|| format!("write {}", cert_path.display()))?;
        Ok((cert_path, key_path))
    }

    /// Issues node `id`'s certificate into `dir` (`node-<id>.pem`, `.key`),
    /// valid for the hosts (names or IPs) it is reached at.
    pub fn issue_node(
        &self,
        dir: &Path,
        id: u64,
        hosts: &[String],
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let name = node_name(id);
        let mut names = vec![name.clone()];
        names.extend(hosts.iter().filter(|h| **h != name).cloned());
        self.issue(
            dir,
            &name,
            &names,
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// Issues a client certificate with common name `name` into `dir`.
    pub fn issue_client(&self, dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        anyhow::ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "client name {name:?} must be 1 or more of a-z, A-Z, 0-9, - and _"
        );
        anyhow::ensure!(
            !name.starts_with("node-"),
            "client name {name:?} must not start with node- (node certificates are issued with --node)"
        );
        self.issue(dir, name, &[], &[ExtendedKeyUsagePurpose::ClientAuth])
    }
}

/// The host part of `host:port`.
pub fn host_of(endpoint: &str) -> String {
    match endpoint.rsplit_once(':') {
        Some((host, _)) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        None => endpoint.to_string(),
    }
}
