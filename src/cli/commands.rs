//! Command dispatch: turns raw arguments into typed requests, calls the one
//! [`Engine`] method of the command and hands its report to the printing
//! module of its subject. Errors go back to `main`, which prints them on
//! stderr and picks the exit code. Nothing here touches the store or the
//! host: that is the engine's.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use crate::cli::args::{AssignArgs, Cli, Command, HookPhaseArg, PfCommand, StoreCommand, SyntaxArg};
use crate::cli::exit::ExitStatus;
use crate::cli::{addresses, fleet, lifecycle, multi, plan_host, reports};
use crate::core::model::AddressFamily;
use crate::core::names::{IfName, JailName, PoolName};
use crate::engine::addresses::AssignRequest;
use crate::engine::api::lifecycle::StatusFilter;
use crate::engine::firewall::Syntax;
use crate::engine::lifecycle::HookPhase;
use crate::engine::multi::{Targets, Verb};
use crate::engine::{Engine, Options};
use crate::error::{Error, Result};

/// Runs one parsed command; returns the exit status for success paths that
/// are not plain 0 (e.g. `check` with findings).
pub fn run(cli: &Cli) -> Result<ExitStatus> {
    // why: completions are generated at package build time, where no jnet.toml exists.
    if let Command::Completions { shell } = &cli.command {
        return crate::cli::completions::print(*shell).map(|()| ExitStatus::Ok);
    }
    // why try_from: `from_secs_f64` panics on values it cannot hold (1e30,
    // 2^64), which is_finite lets through (H13).
    let lock_timeout = Duration::try_from_secs_f64(cli.lock_timeout).map_err(|_| {
        Error::data(format!(
            "--lock-timeout {}: must be a number of seconds >= 0 and below 2^64",
            cli.lock_timeout
        ))
    })?;
    let e = Engine::open(&Options {
        config: cli.config.clone(),
        state_dir: cli.state_dir.clone(),
        lock_timeout,
        facts_only: matches!(cli.command, Command::Assign(_) | Command::Pools(_)),
        one_shot: true,
    })?;
    let quiet = cli.verbose == 0;
    match &cli.command {
        Command::Assign(a) => addresses::assign(&e.assign(&jail_name(&a.jail)?, &assign_request(a)?)?),
        Command::Release {
            jail,
            host: None,
            family: f,
        } => match jail {
            Some(j) => addresses::release(&e.release(&jail_name(j)?, f.as_deref().map(family).transpose()?)?),
            None => Err(Error::data(
                "release needs a jail (or --host HOST to reclaim a dead host's leases)",
            )),
        },
        Command::Release {
            jail, host: Some(h), ..
        } => fleet::release_host(h, jail.as_deref(), &e.release_host(h, jail.as_deref())?),
        Command::Store(StoreCommand::Migrate) => fleet::migrated(&e.store_migrate()?),
        Command::Store(StoreCommand::Touch) => fleet::touched(&e.store_touch()?),
        Command::List(f) => reports::list(&e.list()?, f.format),
        Command::Pools(f) => reports::pools(&e, f.format, f.host.as_deref()),
        Command::Inventory(f) => reports::inventory(&e.inventory(f.host.as_deref())?, f.format),
        Command::Import => addresses::import(&e.import()?),
        Command::Check(a) => {
            // why `--all` is naming none: the check analyses every jail together.
            let jails = names(&a.jails)?;
            reports::check(&e.check(&jails)?, a.strict, a.format)
        }
        Command::Expose(a) => {
            let mut x: crate::core::ports::Expose = a
                .spec
                .parse()
                .map_err(|e: crate::core::ports::PortError| Error::data(e.to_string()))?;
            if let Some(addr) = &a.address {
                // why brackets are accepted: `[2001:db8::1]` is how the
                // exposure's text form writes an IPv6 address.
                let ip: IpAddr = match addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
                    Some(inner) => inner.parse::<Ipv6Addr>().map(IpAddr::V6).ok(),
                    None => addr.parse().ok(),
                }
                .ok_or_else(|| Error::data(format!("--address {addr:?} is not an IPv4 or IPv6 address")))?;
                x.address = Some(ip);
            }
            crate::cli::firewall::exposed(&e.expose(&jail_name(&a.jail)?, x)?)
        }
        Command::Unexpose { jail, spec } => {
            let x = crate::core::ports::parse_expose_with_address(spec).map_err(|e| Error::data(e.to_string()))?;
            crate::cli::firewall::unexposed(&e.unexpose(&jail_name(jail)?, x.proto, x.host, x.address)?)
        }
        Command::Pf(c) => pf(&e, c, quiet),
        Command::Start(t) => multi::lifecycle(&e, Verb::Start, t, quiet),
        Command::Stop(t) => multi::lifecycle(&e, Verb::Stop, t, quiet),
        Command::Restart(t) => multi::lifecycle(&e, Verb::Restart, t, quiet),
        Command::Status { jails, all, format } => {
            let names = names(jails)?;
            let only = match (all, names.is_empty()) {
                (true, _) => StatusFilter::All,
                (false, true) => StatusFilter::Active,
                (false, false) => StatusFilter::Named(names),
            };
            lifecycle::status(&e.status(&only)?, format.format)
        }
        Command::Plan {
            jails,
            all: false,
            stop,
            format,
        } if jails.len() == 1 => lifecycle::plan(&e.plan(&jail_name(&jails[0])?, *stop)?, format.format),
        Command::Plan {
            jails,
            all: false,
            stop: false,
            format,
        } if jails.is_empty() => plan_host::print(&e.plan_host()?, format.format),
        Command::Plan {
            jails,
            all: false,
            stop: true,
            ..
        } if jails.is_empty() => Err(Error::data("plan --stop needs jails or --all")),
        Command::Plan {
            jails,
            all,
            stop,
            format,
        } => multi::plan(&e.plan_many(&targets(jails, *all)?, *stop)?, *stop, format.format),
        Command::Exec { jail, argv } => lifecycle::exec(e.exec(&jail_name(jail)?, argv)?),
        Command::Hook { phase, jail } => {
            let jail = jail_name(jail)?;
            lifecycle::hooked(&jail, &e.hook(hook_phase(*phase), &jail)?)
        }
        Command::JailConf { jail } => {
            print!("{}", e.jail_conf(&jail_name(jail)?)?);
            Ok(ExitStatus::Ok)
        }
        Command::Completions { shell } => crate::cli::completions::print(*shell).map(|()| ExitStatus::Ok),
    }
}

fn pf(e: &Engine, cmd: &PfCommand, quiet: bool) -> Result<ExitStatus> {
    use crate::cli::firewall as show;
    match cmd {
        PfCommand::Render { jail, syntax } => {
            let jail = jail.as_deref().map(jail_name).transpose()?;
            let syntax = match syntax {
                Some(SyntaxArg::Pf) => Syntax::Pf,
                Some(SyntaxArg::Nft) => Syntax::Nft,
                None => Syntax::native(),
            };
            show::rendered(&e.pf_render(jail.as_ref(), syntax)?, jail.is_some())
        }
        PfCommand::Reload {
            jail: Some(j),
            all: false,
        } => show::reloaded(&e.pf_reload(&jail_name(j)?)?),
        PfCommand::Reload { jail: None, all: true } => show::reloaded_all(&e.pf_reload_all()?, quiet),
        PfCommand::Reload { .. } => Err(Error::data("give a jail or --all")),
        PfCommand::Flush { jail } => {
            let jail = jail_name(jail)?;
            let anchor = e.pf_flush(&jail)?;
            println!("{jail}: flushed {anchor}");
            Ok(ExitStatus::Ok)
        }
        PfCommand::Status(f) => show::status(&e.pf_status()?, f.format),
    }
}

pub fn jail_name(s: &str) -> Result<JailName> {
    crate::engine::api::jail_name(s)
}

fn names(jails: &[String]) -> Result<Vec<JailName>> {
    jails.iter().map(|j| jail_name(j)).collect()
}

/// The jails of a lifecycle verb: `--all`, or the names given (each once,
/// in the order given).
pub(crate) fn targets(jails: &[String], all: bool) -> Result<Targets> {
    if all {
        return Ok(Targets::All);
    }
    if jails.is_empty() {
        return Err(Error::data("give one or more jails, or --all"));
    }
    let mut v = Vec::with_capacity(jails.len());
    for j in jails {
        let j = jail_name(j)?;
        if !v.contains(&j) {
            v.push(j);
        }
    }
    Ok(Targets::Named(v))
}

fn hook_phase(p: HookPhaseArg) -> HookPhase {
    match p {
        HookPhaseArg::Prestart => HookPhase::Prestart,
        HookPhaseArg::Poststart => HookPhase::Poststart,
        HookPhaseArg::Prestop => HookPhase::Prestop,
        HookPhaseArg::Poststop => HookPhase::Poststop,
    }
}

/// `jnet assign`'s request: exactly one of an address, `--pool` or
/// `--inherit`.
fn assign_request(a: &AssignArgs) -> Result<AssignRequest> {
    Ok(match (&a.address, &a.pool, a.inherit) {
        (Some(addr), None, false) => {
            let address: IpAddr = addr.parse().map_err(|_| {
                Error::data(format!(
                    "{addr:?} is not an IP address (expected a.b.c.d or an IPv6 address such as 2001:db8::5)"
                ))
            })?;
            if !crate::engine::addresses::unicast_host(address) {
                return Err(Error::data(format!(
                    "{address} cannot be a jail address (not a unicast host address)"
                )));
            }
            let interface = match &a.interface {
                Some(i) => Some(IfName::new(i).map_err(|e| Error::data(e.to_string()))?),
                None => None,
            };
            AssignRequest::Address { address, interface }
        }
        (None, Some(p), false) => AssignRequest::Pool(PoolName::new(p).map_err(|e| Error::data(e.to_string()))?),
        (None, None, true) => AssignRequest::Inherit {
            family: a.family.as_deref().map(family).transpose()?,
        },
        _ => return Err(Error::data("give exactly one of <ADDRESS>, --pool or --inherit")),
    })
}

/// `--family`'s value.
fn family(s: &str) -> Result<AddressFamily> {
    s.parse().map_err(|e: String| Error::data(format!("--family: {e}")))
}
