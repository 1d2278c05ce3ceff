//! [`Engine`]: jnet's one API. One value holds the configuration, jail.conf,
//! the store and the host; it has one method per command, and each method
//! returns a report value for the caller to print. The engine prints
//! nothing and knows neither command-line flags nor exit codes: the CLI
//! turns flags into requests and errors into exit statuses.
//!
//! The verbs live in submodules by subject (addresses, reports, firewall,
//! lifecycle, fleet, the whole-host plan); the pieces they combine
//! (desired state, allocation, the lifecycle runner, rule rendering) are
//! the other `engine` modules.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use crate::core::config::Config;
use crate::engine::facts_cache;
use crate::engine::jails_conf::{self, ConfJail};
use crate::engine::sources::{self, Profiles};
use crate::error::{Error, Result};
use crate::os::Host;
use crate::store::postgres::BackendKind;
use crate::store::{Backend, FleetStore, Store};

pub mod addresses;
pub mod firewall;
pub mod fleet;
pub mod lifecycle;
pub mod plan_host;
pub mod reports;
#[cfg(test)]
mod tests;

/// How to open an [`Engine`]: where its files are and what it is for.
#[derive(Debug, Clone)]
pub struct Options {
    /// jnet.toml; `None` is the platform default
    /// ([`sources::default_config_path`]).
    pub config: Option<PathBuf>,
    /// Overrides `host.state_dir`.
    pub state_dir: Option<PathBuf>,
    /// How long to wait for another jnet process's inventory lock.
    pub lock_timeout: Duration,
    /// The command needs of jnet.toml no jail and of jail.conf only the
    /// static addresses (`assign`, `pools`): those facts may come from the
    /// facts cache (`engine::facts_cache`), and the engine's config then
    /// has no jails.
    pub facts_only: bool,
    /// The process ends right after this one command (the `jnet` binary):
    /// database sessions are left to the process exit instead of closed
    /// (see `store::fleet::detach_sessions_at_exit`). Never for a process
    /// that goes on.
    pub one_shot: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: None,
            state_dir: None,
            lock_timeout: Duration::from_secs(10),
            facts_only: false,
            one_shot: false,
        }
    }
}

/// Everything a command works on, loaded lazily where it costs (jail.conf,
/// the host adapter).
pub struct Engine {
    config_path: PathBuf,
    config: Config,
    /// The file store, or the fleet backend when `[store]` says postgres.
    store: Box<dyn Backend>,
    profiles: Profiles,
    conf_jails: OnceCell<Vec<ConfJail>>,
    conf_addrs: OnceCell<jails_conf::ConfAddrs>,
    /// The facts cache, for `assign` and `pools` (its config has no jails).
    facts: Option<facts_cache::Session>,
    /// The local state directory (the facts cache lives there).
    state_dir: PathBuf,
    /// The system's host adapter, made on first use, or the one given to
    /// [`Engine::with_host`].
    host: OnceCell<Rc<dyn Host>>,
    /// The host was given by the caller: the root check, which guards the
    /// system host, is the caller's.
    injected_host: bool,
}

impl Engine {
    /// Reads the configuration and opens the store it names.
    pub fn open(opts: &Options) -> Result<Engine> {
        if opts.one_shot {
            crate::store::fleet::detach_sessions_at_exit();
        }
        let config_path = opts.config.clone().unwrap_or_else(sources::default_config_path);
        // why: `assign` and `pools` read neither the config's jails nor
        // jail.conf beyond its addresses; at 10,000 declared jails parsing
        // them was all of their time (issue 10). See engine::facts_cache.
        let (config, facts) = if opts.facts_only {
            facts_cache::open_config(&config_path, opts.state_dir.as_deref())?
        } else {
            (sources::load_config(&config_path)?, None)
        };
        let state = sources::state_dir(opts.state_dir.as_deref(), &config, &config_path);
        let local = Store::new(state.clone(), opts.lock_timeout);
        let store: Box<dyn Backend> = match config.store.backend {
            BackendKind::File => Box::new(local),
            BackendKind::Postgres => Box::new(FleetStore::new(local, config.store.clone(), config.pools.clone())),
        };
        let profiles = Profiles::new(&sources::config_dir(&config_path));
        Ok(Engine {
            config_path,
            config,
            store,
            profiles,
            conf_jails: OnceCell::new(),
            conf_addrs: OnceCell::new(),
            facts,
            state_dir: state,
            host: OnceCell::new(),
            injected_host: false,
        })
    }

    /// Uses `host` instead of the system's adapter (tests, or a caller
    /// that wraps the host, e.g. in a snapshot).
    pub fn with_host(mut self, host: Rc<dyn Host>) -> Engine {
        self.host = OnceCell::from(host);
        self.injected_host = true;
        self
    }

    /// [`require_root`] for a verb that changes the system host.
    fn require_root(&self, what: &str) -> Result<()> {
        if self.injected_host {
            return Ok(());
        }
        require_root(what)
    }

    /// The directory of jnet.toml (profiles and templates live there).
    pub fn config_dir(&self) -> PathBuf {
        sources::config_dir(&self.config_path)
    }

    /// The host adapter (the system's unless [`Engine::with_host`] gave one).
    pub fn host(&self) -> Result<Rc<dyn Host>> {
        if let Some(h) = self.host.get() {
            return Ok(h.clone());
        }
        let h: Rc<dyn Host> = Rc::from(crate::engine::host::system_host()?);
        Ok(self.host.get_or_init(|| h).clone())
    }

    /// Jails of jail.conf (empty when `host.jail_conf` is not set).
    pub fn conf_jails(&self) -> Result<&[ConfJail]> {
        if let Some(v) = self.conf_jails.get() {
            return Ok(v);
        }
        let v = match sources::jail_conf_path(&self.config, &self.config_path) {
            Some(p) => jails_conf::read(&p)?,
            None => vec![],
        };
        Ok(self.conf_jails.get_or_init(|| v))
    }

    /// jail.conf's static addresses (see [`Engine::conf_jails`]).
    pub fn conf_addrs(&self) -> Result<&jails_conf::ConfAddrs> {
        if let Some(v) = self.conf_addrs.get() {
            return Ok(v);
        }
        let v = match &self.facts {
            Some(f) => {
                let (addrs, jails) =
                    f.conf_addrs(sources::jail_conf_path(&self.config, &self.config_path).as_deref())?;
                if let Some(j) = jails {
                    let _ = self.conf_jails.set(j);
                }
                addrs
            }
            None => {
                // why the cache here too: `inventory` loads the whole
                // config but needs only these of jail.conf; a cache a
                // previous `assign` or `pools` left is used when fresh.
                let cached = match (
                    self.conf_jails.get(),
                    sources::jail_conf_path(&self.config, &self.config_path),
                ) {
                    (None, Some(p)) if self.store.fleet().is_none() => {
                        facts_cache::fresh_conf_addrs(&self.state_dir, &p)
                    }
                    _ => None,
                };
                match cached {
                    Some(a) => a,
                    None => jails_conf::ConfAddrs::from_jails(self.conf_jails()?),
                }
            }
        };
        Ok(self.conf_addrs.get_or_init(|| v))
    }

    /// This host's id: `[store] host_id`, else the host name.
    pub fn host_id(&self) -> String {
        if !self.config.store.host_id.is_empty() {
            return self.config.store.host_id.clone();
        }
        #[cfg(any(target_os = "linux", target_os = "freebsd"))]
        if let Ok(Ok(h)) = nix::unistd::gethostname().map(|h| h.into_string()) {
            return h;
        }
        "localhost".to_string()
    }

    /// The desired-state context of the inventory `inv`.
    fn context<'a>(&'a self, inv: &'a crate::store::Inventory) -> Result<crate::engine::desired::Context<'a>> {
        Ok(crate::engine::desired::Context {
            config: &self.config,
            config_path: &self.config_path,
            profiles: &self.profiles,
            inventory: inv,
            conf_jails: self.conf_jails()?,
        })
    }
}

/// Refuses early, before anything changes, a verb that changes the host
/// when jnet is not root, instead of failing halfway in a tool or syscall.
pub fn require_root(what: &str) -> Result<()> {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    if !nix::unistd::Uid::effective().is_root() {
        return Err(Error::NoPerm(what.to_string()));
    }
    Ok(())
}

/// A jail name from user input.
pub fn jail_name(s: &str) -> Result<crate::core::names::JailName> {
    crate::core::names::JailName::new(s).map_err(|e| Error::data(e.to_string()))
}
