//! TLS for the transport (feature `tls`): one rustls crypto provider for the HTTP agent and
//! the sync WebSocket, holding only what a relay needs: TLS 1.3 with AES-GCM, X25519 or
//! P-256 key exchange, and the signature algorithms of real certificate chains (ECDSA P-256
//! and P-384, RSA PKCS#1 and PSS, Ed25519). Certificates are verified against the webpki
//! roots. rustls' default provider (ChaCha20, TLS 1.2 suites, P-384 key exchange) is never
//! referenced, so it is not in the phone library.

use std::net::TcpStream;
use std::sync::{Arc, LazyLock};

use rustls::client::{ClientConfig, ClientConnection};
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{PrivateKeyDer, ServerName};
use rustls::sign::SigningKey;
use rustls::{RootCertStore, SignatureScheme, StreamOwned};
use webpki::ring as alg;

use super::TransportError;

/// The transport's provider, built once.
pub(super) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: LazyLock<Arc<CryptoProvider>> = LazyLock::new(|| {
        Arc::new(CryptoProvider {
            cipher_suites: vec![
                cipher_suite::TLS13_AES_128_GCM_SHA256,
                cipher_suite::TLS13_AES_256_GCM_SHA384,
            ],
            kx_groups: vec![kx_group::X25519, kx_group::SECP256R1],
            signature_verification_algorithms: SIGNATURES,
            secure_random: &OsRandom,
            key_provider: &NoClientKeys,
        })
    });
    PROVIDER.clone()
}

/// The WebSocket's client configuration, built once: the webpki roots.
fn client_config() -> Result<Arc<ClientConfig>, TransportError> {
    static CONFIG: LazyLock<Result<Arc<ClientConfig>, rustls::Error>> = LazyLock::new(|| {
        config_trusting(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
    });
    CONFIG
        .clone()
        .map_err(|e| TransportError::Network(e.to_string()))
}

/// TLS 1.3 with the transport's provider, trusting `roots`.
fn config_trusting(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TLS client stream to `host` over `tcp` (the handshake happens on first use).
pub(super) fn connect(
    host: &str,
    tcp: TcpStream,
) -> Result<StreamOwned<ClientConnection, TcpStream>, TransportError> {
    stream(client_config()?, host, tcp)
}

fn stream(
    config: Arc<ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<StreamOwned<ClientConnection, TcpStream>, TransportError> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| TransportError::BadUrl)?;
    let connection =
        ClientConnection::new(config, name).map_err(|e| TransportError::Network(e.to_string()))?;
    Ok(StreamOwned::new(connection, tcp))
}

/// The signatures verified: in certificate chains (`all`) and, by TLS 1.3 signature
/// scheme, in the handshake (`mapping`); as rustls' ring provider has them.
static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::ED25519,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[alg::ECDSA_P384_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[alg::ECDSA_P256_SHA256],
        ),
        (SignatureScheme::ED25519, &[alg::ED25519]),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[alg::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[alg::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[alg::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// Randomness from the operating system.
#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::fill(buf).map_err(|_| GetRandomFailed)
    }
}

/// The device presents no client certificate: there is no key to load.
#[derive(Debug)]
struct NoClientKeys;

impl KeyProvider for NoClientKeys {
    fn load_private_key(
        &self,
        _key: PrivateKeyDer<'static>,
    ) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General("no client certificates".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use rustls::{ServerConfig, ServerConnection};

    use super::*;

    #[test]
    fn tls13_with_aes_gcm_only() {
        let provider = provider();
        let suites: Vec<_> = provider.cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            suites,
            [
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
            ]
        );
        let config = client_config().unwrap();
        assert!(Arc::ptr_eq(config.crypto_provider(), &provider));
    }

    /// A one-connection TLS server on 127.0.0.1 for `localhost`, with a fresh self-signed
    /// certificate (`None` without openssl to make it). It answers "ping" with "pong".
    fn local_server() -> Option<(u16, CertificateDer<'static>)> {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = crate::testing::self_signed_certificate(dir.path())?;
        let cert = CertificateDer::from_pem_file(&cert).unwrap();
        let key = PrivateKeyDer::from_pem_file(&key).unwrap();
        let server =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key)
                .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let connection = ServerConnection::new(Arc::new(server)).unwrap();
            let mut tls = StreamOwned::new(connection, tcp);
            let mut ping = [0; 4];
            if tls.read_exact(&mut ping).is_ok() && &ping == b"ping" {
                let _ = tls.write_all(b"pong");
                let _ = tls.flush();
            }
        });
        Some((port, cert))
    }

    #[test]
    fn talks_to_a_trusted_server_and_refuses_an_unknown_certificate() {
        let Some((port, cert)) = local_server() else {
            return;
        };
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = stream(config_trusting(roots).unwrap(), "localhost", tcp).unwrap();
        tls.write_all(b"ping").unwrap();
        let mut pong = [0; 4];
        tls.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"pong");
        assert_eq!(
            tls.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );

        // The same kind of server, with a certificate no webpki root vouches for.
        let Some((port, _)) = local_server() else {
            return;
        };
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = connect("localhost", tcp).unwrap();
        let refused = tls.write_all(b"ping").and_then(|()| tls.flush());
        let error = refused.unwrap_err().to_string();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }
}
