//! `wardcheck-relay`: the command line. Everything it runs lives in the library.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use wardcheck_core::model::TemplateKey;
use wardcheck_relay::config::{Config, Settings};
use wardcheck_relay::store::{UnitKind, now_ms};
use wardcheck_relay::{AppState, Role, admin, serve};

/// The wardcheck relay: phones of ward police units sync assessments and photo evidence
/// with it.
#[derive(Parser)]
#[command(name = "wardcheck-relay", version)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Common {
    /// TOML config file (flags and WARDCHECK_* variables override it).
    #[arg(long, env = "WARDCHECK_CONFIG", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data folder: relay.sqlite3 and blobs/ [default: ./wardcheck-data]
    #[arg(long, env = "WARDCHECK_DATA", global = true, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay.
    Serve(ServeArgs),
    /// Manage units, users, devices and criteria sets (works while the relay runs).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free one.
    #[arg(long, env = "WARDCHECK_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// URL phones reach the relay at (for enrolment QR codes).
    #[arg(long, env = "WARDCHECK_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "WARDCHECK_TLS_CERT", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, env = "WARDCHECK_TLS_KEY", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Largest photo accepted, in bytes [default: 20 MiB].
    #[arg(long, env = "WARDCHECK_MAX_BLOB_BYTES", value_name = "BYTES")]
    max_blob_bytes: Option<u64>,
    /// Assessments kept in memory for sync; the least recently used beyond this are
    /// dropped and reloaded from disk when needed [default: 512].
    #[arg(long, env = "WARDCHECK_CACHED_DOCUMENTS", value_name = "N")]
    cached_documents: Option<usize>,
    /// Connections syncing at once; under a burst the others wait their turn, first come
    /// first served, before their join is answered [default: 32 per core].
    #[arg(long, env = "WARDCHECK_SYNC_SESSIONS", value_name = "N")]
    sync_sessions: Option<usize>,
    /// Let non-loopback peers read /metrics.
    #[arg(long, env = "WARDCHECK_METRICS_REMOTE")]
    metrics_remote: bool,
    /// Log filter, RUST_LOG syntax (RUST_LOG wins) [default: info].
    #[arg(long, env = "WARDCHECK_LOG", value_name = "FILTER")]
    log: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Units: wards, cities, provinces.
    Unit {
        #[command(subcommand)]
        command: UnitCommand,
    },
    /// Users: officers, supervisors, admins.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Enrolled phones.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Criteria sets (assessment templates) for phones.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Publish a criteria set (template JSON); a published version never changes.
    Add {
        /// The set's JSON file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// List published sets.
    List,
    /// Retire a set: no new assessments from it (those made keep it).
    Retire {
        #[arg(long)]
        id: String,
        #[arg(long)]
        version: u32,
    },
}

#[derive(Subcommand)]
enum UnitCommand {
    /// Add a unit. A ward's parent is a city or province, a city's a province.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// ward, city or province.
        #[arg(long, value_parser = parse_kind)]
        kind: UnitKind,
        #[arg(long)]
        parent: Option<String>,
    },
    /// Set where a unit is (for the console's "photo taken inside the unit" check).
    Locate {
        #[arg(long)]
        id: String,
        /// Latitude of the centre (WGS 84 degrees).
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// Longitude of the centre (WGS 84 degrees).
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        /// How far from the centre still counts as inside, in metres.
        #[arg(long)]
        radius_m: f64,
    },
    /// List units.
    List,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. An officer belongs to a ward, a supervisor to a city or province.
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// officer, supervisor or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        unit: String,
        /// Read a console password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Make a one-time enrolment code (and QR code) for a user's phone.
    EnrolCode {
        #[arg(long)]
        user: String,
        /// Hours until the code expires.
        #[arg(long, default_value_t = 72)]
        ttl_hours: u64,
        /// The relay URL to put in the QR code [default: public_url, or the listen
        /// address of the config].
        #[arg(long, env = "WARDCHECK_PUBLIC_URL", value_name = "URL")]
        relay_url: Option<String>,
    },
    /// List devices.
    List,
    /// Revoke a device: its token stops working at once.
    Revoke {
        #[arg(long)]
        device: String,
    },
}

fn parse_kind(s: &str) -> Result<UnitKind, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => run_serve(&cli.common, args),
        Command::Admin { command } => run_admin(&cli.common, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(common: &Common, flags: Settings) -> Result<Config, String> {
    let flags = Settings {
        data: common.data.clone(),
        ..flags
    };
    Config::load(common.config.as_deref(), flags).map_err(|e| e.to_string())
}

fn run_serve(common: &Common, args: ServeArgs) -> Result<(), String> {
    let config = load_config(
        common,
        Settings {
            listen: args.listen,
            public_url: args.public_url,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
            max_blob_bytes: args.max_blob_bytes,
            cached_documents: args.cached_documents,
            sync_sessions: args.sync_sessions,
            metrics_remote: args.metrics_remote.then_some(true),
            log: args.log,
            ..Settings::default()
        },
    )?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log))
        .map_err(|e| format!("invalid log filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let signal = serve::shutdown_signal().map_err(|e| e.to_string())?;
        let state = AppState::open(config.clone()).map_err(|e| e.to_string())?;
        let bound = serve::bind(&config).await.map_err(|e| e.to_string())?;
        let data = config.data_dir.display();
        tracing::info!(url = %bound.url(), data = %data, "wardcheck-relay listening");
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(
            stdout,
            "wardcheck-relay listening on {} (data: {data})",
            bound.url()
        );
        let _ = stdout.flush();
        drop(stdout);
        bound
            .serve(state, signal)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn run_admin(common: &Common, command: AdminCommand) -> Result<(), String> {
    let config = load_config(common, Settings::default())?;
    let store = admin::open_store(&config.data_dir).map_err(|e| e.to_string())?;
    let out = match command {
        AdminCommand::Unit { command } => match command {
            UnitCommand::Add {
                id,
                name,
                kind,
                parent,
            } => admin::add_unit(&store, &id, &name, kind, parent.as_deref())
                .map(|()| format!("added {kind} {id}\n")),
            UnitCommand::Locate {
                id,
                lat,
                lon,
                radius_m,
            } => admin::locate_unit(&store, &id, lat, lon, radius_m)
                .map(|()| format!("located {id}\n")),
            UnitCommand::List => admin::list_units(&store),
        },
        AdminCommand::User { command } => match command {
            UserCommand::Add {
                id,
                name,
                role,
                unit,
                password_stdin,
            } => {
                let password = password_stdin.then(read_password).transpose()?;
                admin::add_user(&store, &id, &name, role, &unit, password.as_deref())
                    .map(|()| format!("added {role} {id}\n"))
            }
            UserCommand::List => admin::list_users(&store),
        },
        AdminCommand::Device { command } => match command {
            DeviceCommand::EnrolCode {
                user,
                ttl_hours,
                relay_url,
            } => {
                let relay_url = relay_url.unwrap_or_else(|| config.relay_url());
                let ttl = Duration::from_secs(ttl_hours.saturating_mul(3600));
                admin::enrol_code(&store, &user, ttl, &relay_url, now_ms())
                    .map(|code| code.render(&user))
            }
            DeviceCommand::List => admin::list_devices(&store),
            DeviceCommand::Revoke { device } => admin::revoke_device(&store, &device, now_ms())
                .map(|revoked| {
                    if revoked {
                        format!("revoked {device}\n")
                    } else {
                        format!("{device} was already revoked\n")
                    }
                }),
        },
        AdminCommand::Template { command } => match command {
            TemplateCommand::Add { file } => {
                admin::add_template(&store, &file, now_ms()).map(|said| said + "\n")
            }
            TemplateCommand::List => admin::list_templates(&store),
            TemplateCommand::Retire { id, version } => {
                let key = TemplateKey { id, version };
                admin::retire_template(&store, &key, now_ms()).map(|()| format!("retired {key}\n"))
            }
        },
    }
    .map_err(|e| e.to_string())?;
    print!("{out}");
    Ok(())
}

fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password on standard input".into());
    }
    Ok(password)
}
