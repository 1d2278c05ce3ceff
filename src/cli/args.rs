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
        jail: String,
    },
    /// Jails with mode, address, pool, interface, state and declared ports
    List(FormatArg),
    /// Pool usage: network, size, used, free, utilisation
    Pools(FormatArg),
    /// Pools, every assignment, and drift between the inventory and the host
    Inventory(FormatArg),
    /// Take the jails and ip4 settings of jail.conf into the inventory
    Import,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["address", "pool", "inherit"]))]
pub struct AssignArgs {
    pub jail: String,
    /// Dedicated IPv4 address
    pub address: Option<String>,
    /// Take the lowest free address of this pool
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Share the host's addresses (ip4=inherit)
    #[arg(long)]
    pub inherit: bool,
    /// Interface for an address outside every pool
    #[arg(long, value_name = "IF", requires = "address")]
    pub interface: Option<String>,
}
