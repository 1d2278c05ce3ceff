//! clap definitions: raw flags only. Handlers in `commands` turn them into
//! validated requests.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "jnet",
    version,
    about = "Jail networking and firewall controller: addresses, pools, port checks, pf/nft anchors",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file [default: /usr/local/etc/jnet/jnet.toml on FreeBSD, /etc/jnet/jnet.toml on Linux]
    #[arg(short = 'c', long, env = "JNET_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory holding the inventory (overrides host.state_dir)
    #[arg(long, env = "JNET_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds to wait for another jnet process to release the inventory lock
    #[arg(long, global = true, default_value = "10", value_name = "SECONDS")]
    pub lock_timeout: f64,
    /// More log output on stderr (-v info, -vv debug); JNET_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Output formats of `jnet pools`: the report formats plus Prometheus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PoolsFormat {
    #[default]
    Table,
    Json,
    /// Prometheus text exposition (node_exporter textfile collector)
    Prometheus,
}

#[derive(Debug, Args)]
pub struct PoolsFormatArg {
    /// Output format
    #[arg(long, value_enum, default_value_t = PoolsFormat::Table)]
    pub format: PoolsFormat,
    /// With shared pools: only this host's leases in the per-host figures
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// With shared pools: only the assignments of this host
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// `jnet store ...`: the shared store itself.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Upgrade the database schema to this jnet's version
    Migrate,
    /// Record this host as alive in the shared store (for a periodic job)
    Touch,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Give a jail a dedicated address, an address from a pool, or the host's (inherit)
    Assign(AssignArgs),
    /// Forget a jail's address (the address returns to its pool)
    Release {
        /// The jail (with --host: every jail of that host when omitted)
        #[arg(required_unless_present = "host")]
        jail: Option<String>,
        /// Operator reclaim: release the shared leases of HOST (a dead host)
        #[arg(long, value_name = "HOST")]
        host: Option<String>,
        /// Release only the address of this family (inet or inet6); the family is then disabled
        #[arg(long, value_name = "FAMILY", conflicts_with = "host")]
        family: Option<String>,
    },
    /// Jails with mode, address, pool, interface, state and declared ports
    List(FormatArg),
    /// Pool usage: network, size, used, free, utilisation
    Pools(PoolsFormatArg),
    /// Pools, every assignment, and drift between the inventory and the host
    Inventory(InventoryArgs),
    /// Take the jails and ip4 settings of jail.conf into the inventory
    Import,
    /// Pre-start port-collision check (exit 1 on conflicts)
    Check(CheckArgs),
    /// Redirect a host port to a jail port: <proto>/<host-port>[:<jail-port>]
    Expose(ExposeArgs),
    /// Remove an exposure: <proto>/<host-port>
    Unexpose { jail: String, spec: String },
    /// Firewall anchors (pf on FreeBSD, nft on Linux)
    #[command(subcommand)]
    Pf(PfCommand),
    /// Start jails: port check, address, create, exec.*, firewall rules (jail.conf depend order)
    Start(JailsArgs),
    /// Stop jails: exec.prestop/stop, remove, flush rules, remove address (dependents first)
    Stop(JailsArgs),
    /// Stop, then start jails (dependents stopped first, started again after)
    Restart(JailsArgs),
    /// Running jails (like jls): id, name, address, state, ports
    Status {
        /// Jails to show (default: those running or between states)
        jails: Vec<String>,
        /// Every jail of the inventory
        #[arg(long, conflicts_with = "jails")]
        all: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Print the steps a start (or --stop) would take, without doing them
    Plan {
        /// The jails to plan, in depend order (default: every jail, with address previews)
        jails: Vec<String>,
        /// Plan every jail of the inventory, in depend order
        #[arg(long, conflicts_with = "jails")]
        all: bool,
        /// Plan a stop instead of a start
        #[arg(long)]
        stop: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Run a command inside a running jail (like jexec)
    Exec {
        jail: String,
        /// Command and arguments, after `--`
        #[arg(last = true, required = true, value_name = "CMD")]
        argv: Vec<String>,
    },
    /// jail(8) hook: the matching part of a start or stop (for jail.conf exec.* lines)
    Hook { phase: HookPhaseArg, jail: String },
    /// Print a jail.conf fragment with the jail's network parameters and hook lines
    JailConf { jail: String },
    /// The shared lease store ([store] backend = "postgres")
    #[command(subcommand)]
    Store(StoreCommand),
    /// Print a shell completion script on stdout (needs no configuration)
    Completions {
        shell: crate::cli::completions::CompletionShell,
    },
}

/// The jails of a lifecycle verb: names, or `--all`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("targets").required(true).args(["jails", "all"]))]
pub struct JailsArgs {
    /// Jails, run in jail.conf depend order (dependencies pulled in)
    pub jails: Vec<String>,
    /// Every jail that has an address in the inventory; quiet on success unless -v
    #[arg(long, conflicts_with = "jails")]
    pub all: bool,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ExposeArgs {
    pub jail: String,
    /// <proto>/<host-port>[:<jail-port>], ranges as 8000-8010
    pub spec: String,
    /// Bind the redirection to this external address only (IPv4 or IPv6)
    #[arg(long, value_name = "ADDRESS")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyntaxArg {
    Pf,
    Nft,
}

#[derive(Debug, Subcommand)]
pub enum PfCommand {
    /// Print the rules jnet would load (no root needed)
    Render {
        jail: Option<String>,
        /// Rule language [default: pf on FreeBSD, nft on Linux]
        #[arg(long, value_enum)]
        syntax: Option<SyntaxArg>,
    },
    /// Load a jail's rules, or every running jail's (e.g. after `service pf reload`)
    Reload {
        #[arg(conflicts_with = "all")]
        jail: Option<String>,
        /// Every jail the host reports running; stale anchors of jnet's other jails are flushed; quiet unless -v
        #[arg(long)]
        all: bool,
    },
    /// Remove a jail's rules
    Flush { jail: String },
    /// Loaded anchors and whether they match what jnet would render
    Status(FormatArg),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Jails to check (default: every jail in the inventory)
    pub jails: Vec<String>,
    /// Every jail in the inventory (the same as naming none)
    #[arg(long, conflicts_with = "jails")]
    pub all: bool,
    /// Exit 1 on warnings too
    #[arg(long)]
    pub strict: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The jail(8) hook calling `jnet hook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookPhaseArg {
    Prestart,
    Poststart,
    Prestop,
    Poststop,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["address", "pool", "inherit"]))]
pub struct AssignArgs {
    pub jail: String,
    /// Dedicated address, IPv4 or IPv6 (an address of a family the jail has replaces it)
    pub address: Option<String>,
    /// Take the lowest free address of this pool
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Share the host's addresses (ip4=inherit, ip6=inherit)
    #[arg(long)]
    pub inherit: bool,
    /// With --inherit: only this family (inet or inet6) inherits; the other is kept
    #[arg(long, value_name = "FAMILY", requires = "inherit")]
    pub family: Option<String>,
    /// Interface for an address outside every pool
    #[arg(long, value_name = "IF", requires = "address")]
    pub interface: Option<String>,
}
