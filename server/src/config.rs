//! The relay's settings: defaults, overridden by a TOML file (`--config FILE`),
//! overridden by command-line flags and their `WARDCHECK_*` environment variables.
//!
//! Every key of the file is optional:
//!
//! ```toml
//! data = "/var/lib/wardcheck"          # data folder: relay.sqlite3 and blobs/
//! listen = "0.0.0.0:8443"
//! public_url = "https://relay.example:8443"   # put in enrolment QR codes
//! tls_cert = "/etc/wardcheck/cert.pem"
//! tls_key = "/etc/wardcheck/key.pem"
//! max_blob_bytes = 20971520            # largest photo accepted (20 MiB)
//! max_json_bytes = 65536               # largest JSON request body
//! request_timeout_secs = 30
//! blob_timeout_secs = 600              # a whole photo upload or download
//! revocation_poll_ms = 500
//! shutdown_grace_secs = 10             # how long in-flight requests may finish
//! cached_documents = 512               # assessments kept in memory for sync (LRU)
//! sync_sessions = 64                   # connections syncing at once (default 32 per core)
//! header_read_timeout_secs = 10        # a request head, or the wait for the next one
//! connections_per_address = 256        # open connections from one client address
//! enrol_per_minute = 30                # enrolment requests per client address
//! password_checks = 2                  # console passwords checked at once (19 MiB each)
//! partial_upload_ttl_secs = 172800     # an unfinished upload untouched this long expires
//! partial_uploads_per_device = 16      # unfinished uploads of one device
//! partial_bytes_per_device = 167772160 # their declared bytes (160 MiB)
//! partial_bytes_total = 2147483648     # of all unfinished uploads (2 GiB)
//! metrics_remote = false               # /metrics only from loopback unless true
//! log = "info,tower_http=debug"        # like RUST_LOG, which wins when set
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::store::PartialQuota;

/// One layer of settings (the file, or the flags): every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Data folder.
    pub data: Option<PathBuf>,
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// The URL phones reach the relay at, for enrolment QR codes.
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Largest blob accepted, bytes.
    pub max_blob_bytes: Option<u64>,
    /// Largest JSON body accepted, bytes.
    pub max_json_bytes: Option<usize>,
    /// Timeout of ordinary requests, seconds.
    pub request_timeout_secs: Option<u64>,
    /// Timeout of one blob upload or download, seconds.
    pub blob_timeout_secs: Option<u64>,
    /// How often to look for revoked devices, ms.
    pub revocation_poll_ms: Option<u64>,
    /// Grace period for in-flight requests on shutdown, seconds.
    pub shutdown_grace_secs: Option<u64>,
    /// Assessments kept in memory for sync.
    pub cached_documents: Option<usize>,
    /// Connections in their sync phase at once; the others wait their turn.
    pub sync_sessions: Option<usize>,
    /// How long a connection may take to send a request head, or stay idle between
    /// requests, seconds.
    pub header_read_timeout_secs: Option<u64>,
    /// Open connections from one client address.
    pub connections_per_address: Option<usize>,
    /// Enrolment requests a minute from one client address.
    pub enrol_per_minute: Option<u32>,
    /// Console passwords checked at once.
    pub password_checks: Option<usize>,
    /// How long an unfinished upload may go untouched, seconds.
    pub partial_upload_ttl_secs: Option<u64>,
    /// Unfinished uploads of one device.
    pub partial_uploads_per_device: Option<u32>,
    /// Declared bytes of one device's unfinished uploads.
    pub partial_bytes_per_device: Option<u64>,
    /// Declared bytes of all unfinished uploads.
    pub partial_bytes_total: Option<u64>,
    /// Answer `/metrics` to non-loopback peers too.
    pub metrics_remote: Option<bool>,
    /// Log filter (`RUST_LOG` syntax).
    pub log: Option<String>,
}

impl Settings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Parses TOML settings.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse(err.to_string()))
    }

    /// These settings, with `lower`'s where these have none.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            data: self.data.or(lower.data),
            listen: self.listen.or(lower.listen),
            public_url: self.public_url.or(lower.public_url),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            max_blob_bytes: self.max_blob_bytes.or(lower.max_blob_bytes),
            max_json_bytes: self.max_json_bytes.or(lower.max_json_bytes),
            request_timeout_secs: self.request_timeout_secs.or(lower.request_timeout_secs),
            blob_timeout_secs: self.blob_timeout_secs.or(lower.blob_timeout_secs),
            revocation_poll_ms: self.revocation_poll_ms.or(lower.revocation_poll_ms),
            shutdown_grace_secs: self.shutdown_grace_secs.or(lower.shutdown_grace_secs),
            cached_documents: self.cached_documents.or(lower.cached_documents),
            sync_sessions: self.sync_sessions.or(lower.sync_sessions),
            header_read_timeout_secs: self
                .header_read_timeout_secs
                .or(lower.header_read_timeout_secs),
            connections_per_address: self
                .connections_per_address
                .or(lower.connections_per_address),
            enrol_per_minute: self.enrol_per_minute.or(lower.enrol_per_minute),
            password_checks: self.password_checks.or(lower.password_checks),
            partial_upload_ttl_secs: self
                .partial_upload_ttl_secs
                .or(lower.partial_upload_ttl_secs),
            partial_uploads_per_device: self
                .partial_uploads_per_device
                .or(lower.partial_uploads_per_device),
            partial_bytes_per_device: self
                .partial_bytes_per_device
                .or(lower.partial_bytes_per_device),
            partial_bytes_total: self.partial_bytes_total.or(lower.partial_bytes_total),
            metrics_remote: self.metrics_remote.or(lower.metrics_remote),
            log: self.log.or(lower.log),
        }
    }
}

/// The settings could not be read or make no sense.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid config file: {0}")]
    Parse(String),
    /// A value is out of range; the text says which.
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
}

/// TLS certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// The relay's effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data folder (default `./wardcheck-data`).
    pub data_dir: PathBuf,
    /// Listen address (default `127.0.0.1:8080`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// The URL phones use, if set; else derived from `listen`.
    pub public_url: Option<String>,
    /// HTTPS, if both files are given.
    pub tls: Option<TlsFiles>,
    /// Largest blob accepted (default 20 MiB).
    pub max_blob_bytes: u64,
    /// Largest JSON request body (default 64 KiB).
    pub max_json_bytes: usize,
    /// Timeout of ordinary requests (default 30 s).
    pub request_timeout: Duration,
    /// Timeout of one blob transfer (default 600 s).
    pub blob_timeout: Duration,
    /// Revocation polling interval (default 500 ms).
    pub revocation_poll: Duration,
    /// Grace period on shutdown (default 10 s).
    pub shutdown_grace: Duration,
    /// Assessments kept in memory for sync (default 512; least recently used dropped).
    pub cached_documents: usize,
    /// Connections in their sync phase at once (default 32 per core); the others wait,
    /// first come first served, before their `join` is answered.
    pub sync_sessions: usize,
    /// How long a connection may take to send a whole request head, counted from when
    /// the relay starts waiting for it: on a new connection and between the requests of
    /// a kept-alive one, so it is the idle timeout too (default 10 s). A TLS handshake
    /// gets as long.
    pub header_read_timeout: Duration,
    /// Open connections from one client address (an IPv6 /64 counts as one); more are
    /// closed as soon as they are accepted (default 256).
    pub connections_per_address: usize,
    /// Enrolment requests a minute from one client (as many at once); more get 429 with
    /// `Retry-After` (default 30).
    pub enrol_per_minute: u32,
    /// Console passwords checked at once, each in its own 19 MiB buffer made once and
    /// reused (default 2): the relay's memory for sign-ins, whatever comes.
    pub password_checks: usize,
    /// How long an unfinished upload may go untouched before it is deleted (default
    /// 48 h: a phone offline over a weekend still resumes).
    pub partial_upload_ttl: Duration,
    /// The room for unfinished uploads: per device, in count and declared bytes (default
    /// 16 and 160 MiB), and for all together (default 2 GiB). See [`crate::uploads`].
    pub partial_quota: PartialQuota,
    /// Whether `/metrics` answers non-loopback peers (default false).
    pub metrics_remote: bool,
    /// Log filter (default `info`).
    pub log: String,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data folder.
pub const DEFAULT_DATA: &str = "./wardcheck-data";

/// The defaults of the relay's bounds: every size, time and count a setting can change.
pub mod defaults {
    /// `max_blob_bytes`: the largest photo accepted.
    pub const MAX_BLOB_BYTES: u64 = 20 * 1024 * 1024;
    /// `max_json_bytes`: the largest JSON (or form) request body.
    pub const MAX_JSON_BYTES: usize = 64 * 1024;
    /// `request_timeout_secs`: an ordinary request, body included.
    pub const REQUEST_TIMEOUT_SECS: u64 = 30;
    /// `blob_timeout_secs`: one photo upload or download.
    pub const BLOB_TIMEOUT_SECS: u64 = 600;
    /// `revocation_poll_ms`.
    pub const REVOCATION_POLL_MS: u64 = 500;
    /// `shutdown_grace_secs`: in-flight requests on shutdown.
    pub const SHUTDOWN_GRACE_SECS: u64 = 10;
    /// `sync_sessions`, per core.
    pub const SYNC_SESSIONS_PER_CORE: usize = 32;
    /// `header_read_timeout_secs`: a request head, and the idle wait for the next one.
    pub const HEADER_READ_TIMEOUT_SECS: u64 = 10;
    /// `connections_per_address`: high, for phones behind one carrier NAT.
    pub const CONNECTIONS_PER_ADDRESS: usize = 256;
    /// `enrol_per_minute`: a room of phones enrolling behind one address gets through;
    /// guessing 80-bit codes gets nowhere.
    pub const ENROL_PER_MINUTE: u32 = 30;
    /// `password_checks`: 38 MiB of argon2 memory; a check takes ~50 ms of a core.
    pub const PASSWORD_CHECKS: usize = 2;
    /// `partial_upload_ttl_secs`.
    pub const PARTIAL_UPLOAD_TTL_SECS: u64 = 48 * 3600;
    /// `partial_uploads_per_device`: an honest phone uploads one photo at a time and
    /// resumes what broke off first.
    pub const PARTIAL_UPLOADS_PER_DEVICE: u32 = 16;
    /// `partial_bytes_per_device`: eight photos of the largest size.
    pub const PARTIAL_BYTES_PER_DEVICE: u64 = 8 * MAX_BLOB_BYTES;
    /// `partial_bytes_total`.
    pub const PARTIAL_BYTES_TOTAL: u64 = 2 * 1024 * 1024 * 1024;
}

/// Bounds that are not settings: the sizes of the relay's own tables and queues.
pub mod fixed {
    /// Clients whose enrolment rate is tracked at once ([`crate::ratelimit`]).
    pub const RATE_LIMITED_CLIENTS: usize = 10_000;
    /// Sign-ins waiting for a password check ([`crate::passwords`]); more are answered
    /// 503 at once.
    pub const PASSWORD_CHECKS_WAITING: usize = 32;
    /// Bytes of document snapshots being read or sent at once, in KiB
    /// ([`crate::routes::documents`]: 64 MiB); a download that would pass it is answered
    /// 503 (a phone tries it at its next sync). A response's bytes count until it is
    /// sent: a reader that stops reading holds them until its connection goes.
    pub const SNAPSHOT_KIB_IN_FLIGHT: usize = 64 << 10;
    /// The longest wait between two sweeps of expired uploads ([`crate::uploads`]); a
    /// short `partial_upload_ttl` is swept every half of it.
    pub const PARTIAL_SWEEP_EVERY_AT_MOST: std::time::Duration =
        std::time::Duration::from_secs(600);
}

impl Default for Config {
    fn default() -> Self {
        Self::from_settings(Settings::default()).expect("the defaults are valid")
    }
}

impl Config {
    /// The configuration from command-line `flags` over the file at `file` (if any)
    /// over the defaults.
    pub fn load(file: Option<&Path>, flags: Settings) -> Result<Self, ConfigError> {
        let from_file = match file {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Self::from_settings(flags.or(from_file))
    }

    /// Applies the defaults to `settings` and checks them.
    pub fn from_settings(s: Settings) -> Result<Self, ConfigError> {
        let tls = match (s.tls_cert, s.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "TLS needs both a certificate and a key",
                ));
            }
        };
        let config = Config {
            data_dir: s.data.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
            listen: s
                .listen
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            public_url: s.public_url.map(|url| url.trim_end_matches('/').to_owned()),
            tls,
            max_blob_bytes: s.max_blob_bytes.unwrap_or(defaults::MAX_BLOB_BYTES),
            max_json_bytes: s.max_json_bytes.unwrap_or(defaults::MAX_JSON_BYTES),
            request_timeout: secs(s.request_timeout_secs, defaults::REQUEST_TIMEOUT_SECS),
            blob_timeout: secs(s.blob_timeout_secs, defaults::BLOB_TIMEOUT_SECS),
            revocation_poll: Duration::from_millis(
                s.revocation_poll_ms.unwrap_or(defaults::REVOCATION_POLL_MS),
            ),
            shutdown_grace: secs(s.shutdown_grace_secs, defaults::SHUTDOWN_GRACE_SECS),
            cached_documents: s
                .cached_documents
                .unwrap_or(crate::documents::DEFAULT_CACHED_DOCUMENTS),
            sync_sessions: s.sync_sessions.unwrap_or_else(|| {
                defaults::SYNC_SESSIONS_PER_CORE
                    * std::thread::available_parallelism().map_or(2, usize::from)
            }),
            header_read_timeout: secs(
                s.header_read_timeout_secs,
                defaults::HEADER_READ_TIMEOUT_SECS,
            ),
            connections_per_address: s
                .connections_per_address
                .unwrap_or(defaults::CONNECTIONS_PER_ADDRESS),
            enrol_per_minute: s.enrol_per_minute.unwrap_or(defaults::ENROL_PER_MINUTE),
            password_checks: s.password_checks.unwrap_or(defaults::PASSWORD_CHECKS),
            partial_upload_ttl: secs(s.partial_upload_ttl_secs, defaults::PARTIAL_UPLOAD_TTL_SECS),
            partial_quota: PartialQuota {
                per_owner: s
                    .partial_uploads_per_device
                    .unwrap_or(defaults::PARTIAL_UPLOADS_PER_DEVICE),
                bytes_per_owner: s
                    .partial_bytes_per_device
                    .unwrap_or(defaults::PARTIAL_BYTES_PER_DEVICE),
                bytes_total: s
                    .partial_bytes_total
                    .unwrap_or(defaults::PARTIAL_BYTES_TOTAL),
            },
            metrics_remote: s.metrics_remote.unwrap_or(false),
            log: s.log.unwrap_or_else(|| "info".to_owned()),
        };
        if config.max_blob_bytes == 0 || config.max_json_bytes == 0 {
            return Err(ConfigError::Invalid("size limits must be above zero"));
        }
        if config.request_timeout.is_zero()
            || config.blob_timeout.is_zero()
            || config.header_read_timeout.is_zero()
        {
            return Err(ConfigError::Invalid("timeouts must be above zero"));
        }
        if config.cached_documents == 0 {
            return Err(ConfigError::Invalid("cached_documents must be at least 1"));
        }
        if config.sync_sessions == 0 {
            return Err(ConfigError::Invalid("sync_sessions must be at least 1"));
        }
        if config.connections_per_address == 0
            || config.enrol_per_minute == 0
            || config.password_checks == 0
        {
            return Err(ConfigError::Invalid(
                "connections_per_address, enrol_per_minute and password_checks must be at least 1",
            ));
        }
        let quota = &config.partial_quota;
        if config.partial_upload_ttl.is_zero()
            || quota.per_owner == 0
            || quota.bytes_per_owner < config.max_blob_bytes
            || quota.bytes_total < quota.bytes_per_owner
        {
            return Err(ConfigError::Invalid(
                "unfinished uploads need a ttl, at least one per device, room per device for \
                 the largest photo, and room in all for one device's",
            ));
        }
        if config.revocation_poll < Duration::from_millis(10) {
            return Err(ConfigError::Invalid(
                "revocation_poll_ms must be at least 10",
            ));
        }
        Ok(config)
    }

    /// The relay database file: `DATA/relay.sqlite3`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("relay.sqlite3")
    }

    /// The blob folder: `DATA/blobs`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }

    /// The URL phones reach the relay at: `public_url`, or one made from `listen`
    /// (`http`, or `https` with TLS).
    pub fn relay_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| self.url_for(self.listen))
    }

    /// Whether browsers reach the relay over HTTPS: TLS here, or an `https` public URL
    /// (a TLS-terminating proxy in front). The console's cookies are `Secure` then, and
    /// its forms must come from an `https` origin.
    pub fn serves_https(&self) -> bool {
        self.tls.is_some()
            || self
                .public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://"))
    }

    /// `http(s)://addr`.
    pub fn url_for(&self, addr: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}")
    }
}

/// `Some(n)` seconds, or the default.
fn secs(setting: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(setting.unwrap_or(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_setup() {
        let config = Config::default();
        assert_eq!(config.data_dir, PathBuf::from("./wardcheck-data"));
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.max_blob_bytes, 20 * 1024 * 1024);
        assert_eq!(config.max_json_bytes, 64 * 1024);
        assert_eq!(config.revocation_poll, Duration::from_millis(500));
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.connections_per_address, 256);
        assert_eq!(config.enrol_per_minute, 30);
        assert_eq!(config.password_checks, 2);
        assert_eq!(config.partial_upload_ttl, Duration::from_secs(48 * 3600));
        assert_eq!(
            config.partial_quota,
            PartialQuota {
                per_owner: 16,
                bytes_per_owner: 160 * 1024 * 1024,
                bytes_total: 2 * 1024 * 1024 * 1024,
            }
        );
        assert_eq!(
            config.database_path(),
            PathBuf::from("./wardcheck-data/relay.sqlite3")
        );
        assert_eq!(config.relay_url(), "http://127.0.0.1:8080");
        assert!(config.tls.is_none());
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "data = \"/srv/wc\"\nlisten = \"0.0.0.0:9000\"\nmax_blob_bytes = 1000\n\
             public_url = \"https://relay.example/\"\n",
        )
        .unwrap();
        let flags = Settings {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Settings::default()
        };
        let config = Config::load(Some(&file), flags).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.data_dir, PathBuf::from("/srv/wc"));
        assert_eq!(config.max_blob_bytes, 1000);
        assert_eq!(config.max_json_bytes, 64 * 1024);
        assert_eq!(config.relay_url(), "https://relay.example");
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            Settings::from_toml("listen = \"127.0.0.1:1\"\nport = 3"),
            Err(ConfigError::Parse(_))
        ));
        let half_tls = Settings {
            tls_cert: Some("cert.pem".into()),
            ..Settings::default()
        };
        assert!(matches!(
            Config::from_settings(half_tls),
            Err(ConfigError::Invalid(_))
        ));
        let zero = Settings {
            max_blob_bytes: Some(0),
            ..Settings::default()
        };
        assert!(Config::from_settings(zero).is_err());
        for unusable in [
            Settings {
                partial_bytes_per_device: Some(defaults::MAX_BLOB_BYTES - 1),
                ..Settings::default()
            },
            Settings {
                partial_bytes_total: Some(defaults::PARTIAL_BYTES_PER_DEVICE - 1),
                ..Settings::default()
            },
            Settings {
                partial_upload_ttl_secs: Some(0),
                ..Settings::default()
            },
            Settings {
                header_read_timeout_secs: Some(0),
                ..Settings::default()
            },
            Settings {
                password_checks: Some(0),
                ..Settings::default()
            },
        ] {
            assert!(
                matches!(
                    Config::from_settings(unusable.clone()),
                    Err(ConfigError::Invalid(_))
                ),
                "{unusable:?}"
            );
        }
        let no_sync_places = Settings {
            sync_sessions: Some(0),
            ..Settings::default()
        };
        assert!(matches!(
            Config::from_settings(no_sync_places),
            Err(ConfigError::Invalid("sync_sessions must be at least 1"))
        ));
        assert!(matches!(
            Config::load(
                Some(Path::new("/nonexistent/relay.toml")),
                Settings::default()
            ),
            Err(ConfigError::Read { .. })
        ));
        let tls = Settings {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Settings::default()
        };
        assert_eq!(
            Config::from_settings(tls).unwrap().relay_url(),
            "https://127.0.0.1:8080"
        );
    }
}
