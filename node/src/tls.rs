//! Mutual TLS of a node's two listeners and of its connections to peers.
//!
//! Both listeners accept only peers whose certificate chains to the
//! cluster's CA; a certificate from another cluster's CA fails the
//! handshake. Who a peer is comes from its certificate's common name:
//! `node-<id>` for a node (its certificate also names `node-<id>` as a DNS
//! name, which a dialing peer verifies, so one node cannot pose as
//! another), anything else for a client, whose name maps to a role.
//!
//! The handshake is ours (tokio-rustls), not tonic's: tonic's TLS config is
//! fixed when the server starts, while ours reads the current certificate
//! and key for every new connection, so a rotated certificate takes effect
//! without a restart (on SIGHUP, or when the files change).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

pub use crate::roles::{Identity, PeerInfo};

/// A TLS handshake that has not finished in this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Accepted connections waiting for the gRPC server at most.
const ACCEPTED_QUEUED_MAX: usize = 128;
/// How often the certificate files are checked for a change.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// `[tls]` of node.toml: the cluster's CA and this node's certificate and
/// key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificate names and their roles, beyond certificates named
    /// after a role (`root`, `game`, `payments`, `ops`, `auditor`), which
    /// have that role. E.g. `payout-worker = "payments"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub clients: BTreeMap<String, crate::roles::Role>,
}

impl TlsConfig {
    /// This node's identity as a client of other nodes' client API.
    pub fn client_tls(&self) -> anyhow::Result<geowallet_client::ClientTls> {
        let read =
            |p: &Path| std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()));
        Ok(geowallet_client::ClientTls {
            ca_pem: read(&self.ca)?,
            cert_pem: read(&self.cert)?,
            key_pem: read(&self.key)?,
        })
    }
}

/// The common name (and DNS name) of node `id`'s certificate.
pub fn node_name(id: u64) -> String {
    format!("node-{id}")
}

/// The identity a certificate names, if it names one.
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<Identity> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?.as_str().ok()?;
    let node = cn
        .strip_prefix("node-")
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|id| *id > 0 && node_name(*id) == cn);
    Some(match node {
        Some(id) => Identity::Node(id),
        None => Identity::Client(cn.to_string()),
    })
}

/// The node's TLS material, reloaded when its files change.
pub struct Tls {
    files: TlsConfig,
    loaded: RwLock<Loaded>,
}

struct Loaded {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    stamps: Vec<Option<SystemTime>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parse the PEM certificates in {}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("read a PEM private key from {}", path.display()))
}

fn stamps(files: &TlsConfig) -> Vec<Option<SystemTime>> {
    [&files.ca, &files.cert, &files.key]
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl Loaded {
    fn read(files: &TlsConfig) -> anyhow::Result<Loaded> {
        let stamps = stamps(files);
        let mut roots = RootCertStore::empty();
        for ca in read_certs(&files.ca)? {
            roots
                .add(ca)
                .with_context(|| format!("use {} as the cluster's CA", files.ca.display()))?;
        }
        let roots = Arc::new(roots);
        let chain = read_certs(&files.cert)?;
        let key = read_key(&files.key)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .context("build the client certificate verifier")?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("choose TLS versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .with_context(|| {
                format!(
                    "use {} with the key {}",
                    files.cert.display(),
                    files.key.display()
                )
            })?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("choose TLS versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("use the node's certificate as a client certificate")?;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Loaded {
            server: Arc::new(server),
            client: Arc::new(client),
            stamps,
        })
    }
}

impl Tls {
    pub fn load(files: &TlsConfig) -> anyhow::Result<Arc<Tls>> {
        let loaded = Loaded::read(files)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            loaded: RwLock::new(loaded),
        }))
    }

    fn server(&self) -> Arc<ServerConfig> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .server
            .clone()
    }

    fn client(&self) -> Arc<ClientConfig> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .client
            .clone()
    }

    /// Reads the files again when `forced` or when they changed; a set
    /// that does not load leaves the current one in use.
    pub fn reload(&self, forced: bool) -> anyhow::Result<bool> {
        let changed =
            self.loaded.read().unwrap_or_else(|p| p.into_inner()).stamps != stamps(&self.files);
        if !forced && !changed {
            return Ok(false);
        }
        let loaded = Loaded::read(&self.files)?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(true)
    }

    /// Reloads on SIGHUP and whenever the files change, forever. New
    /// connections use the new certificate; open ones keep theirs.
    pub async fn watch(self: Arc<Self>) {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            let forced = tokio::select! {
                Some(()) = async { hup.as_mut()?.recv().await } => true,
                () = tokio::time::sleep(RELOAD_CHECK_INTERVAL) => false,
            };
            match self.reload(forced) {
                Ok(true) => {
                    tracing::info!(cert = %self.files.cert.display(), "reloaded TLS certificate and key")
                }
                Ok(false) => {}
                Err(e) => tracing::error!(
                    "TLS files changed but do not load, still using the previous ones: {e:#}"
                ),
            }
        }
    }

    /// A lazily connecting channel to `addr` that verifies the server is
    /// `server_name` and shows this node's certificate.
    pub fn dial(self: &Arc<Self>, addr: &str, server_name: &str) -> Result<Channel, String> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| format!("bad TLS server name {server_name:?}: {e}"))?;
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad endpoint {addr}: {e}"))?
            .connect_timeout(Duration::from_millis(500))
            .http2_keep_alive_interval(Duration::from_secs(5));
        let tls = self.clone();
        let target = addr.to_string();
        let connect = tower::service_fn(move |_uri: tonic::codegen::http::Uri| {
            let config = tls.client();
            let name = name.clone();
            let target = target.clone();
            async move {
                let tcp = TcpStream::connect(&target).await?;
                tcp.set_nodelay(true)?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        Ok(endpoint.connect_with_connector_lazy(connect))
    }
}

/// One accepted connection, TLS or plain.
pub enum Conn {
    Plain(TcpStream, PeerInfo),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>, PeerInfo),
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        match self {
            Conn::Plain(_, p) | Conn::Tls(_, p) => p.clone(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connections `listener` accepts, through the TLS handshake when
/// `tls` is set (each in its own task, so a slow or hostile handshake
/// holds up no other). Refused handshakes are logged and dropped.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    what: &'static str,
) -> impl futures::Stream<Item = Result<Conn, std::io::Error>> {
    let (tx, rx) = mpsc::channel::<Conn>(ACCEPTED_QUEUED_MAX);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("{what} listener: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let conn = match tls {
                    None => Some(Conn::Plain(
                        tcp,
                        PeerInfo {
                            remote,
                            tls: false,
                            identity: None,
                        },
                    )),
                    Some(tls) => handshake(tcp, remote, &tls, what).await,
                };
                if let Some(conn) = conn {
                    let _ = tx.send(conn).await;
                }
            });
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        let conn = rx.recv().await?;
        Some((Ok(conn), rx))
    })
}

async fn handshake(tcp: TcpStream, remote: SocketAddr, tls: &Tls, what: &str) -> Option<Conn> {
    let accept = tokio_rustls::TlsAcceptor::from(tls.server()).accept(tcp);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(%remote, "{what} listener: refused a TLS connection: {e}");
            return None;
        }
        Err(_) => {
            tracing::warn!(%remote, "{what} listener: TLS handshake not done within {HANDSHAKE_TIMEOUT:?}");
            return None;
        }
    };
    let identity = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(identity_of);
    Some(Conn::Tls(
        Box::new(stream),
        PeerInfo {
            remote,
            tls: true,
            identity,
        },
    ))
}

/// Refuses every call on the node-to-node listener that does not come
/// from a node of this cluster (`members`). Without TLS there is no one to
/// check: that mode exists only behind `insecure_plaintext`.
pub fn members_only(
    members: Arc<BTreeSet<u64>>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let Some(peer) = req.extensions().get::<PeerInfo>() else {
            return Ok(req);
        };
        match &peer.identity {
            _ if !peer.tls => Ok(req),
            Some(Identity::Node(id)) if members.contains(id) => Ok(req),
            other => {
                let other = other
                    .as_ref()
                    .map_or("a certificate without a name".to_string(), |o| {
                        o.to_string()
                    });
                tracing::warn!(remote = %peer.remote, who = %other, "permission denied on the node-to-node listener");
                Err(Status::permission_denied(format!(
                    "permission denied: the node-to-node listener serves only this cluster's \
                     nodes, and {other} is not one of them"
                )))
            }
        }
    }
}
