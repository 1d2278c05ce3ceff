//! The address verbs of [`Engine`]: `assign`, `release` and `import`. Each
//! is one locked read-decide-write of the inventory (`engine::addresses`);
//! this module observes the host and jail.conf for them and turns records
//! into reports.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use super::Engine;
use crate::core::model::{AddressFamily, Mode};
use crate::core::names::JailName;
use crate::engine::addresses::{self, AssignRequest, Imported, Observed, Outcome};
use crate::engine::jails_conf;
use crate::engine::sources;
use crate::error::{Error, Result};
use crate::os::{self, IfAddr};
use crate::store::JailRecord;

/// What a jail holds: its mode and, when dedicated, its address with the
/// pool and interface it came with (the IPv4 ones, as before dual stack),
/// and per family its mode and lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holding {
    pub mode: Mode,
    pub address: Option<IpAddr>,
    pub pool: Option<String>,
    pub interface: Option<String>,
    /// jail(8)'s mode word of IPv4 and of IPv6: `inherit`, `new`, `disable`.
    pub families: [&'static str; 2],
    /// Every leased address with its pool and interface, IPv4 first.
    pub leases: Vec<(IpAddr, Option<String>, Option<String>)>,
}

impl Holding {
    pub fn of(r: &JailRecord) -> Holding {
        Holding {
            mode: r.mode(),
            address: r.address().map(IpAddr::V4),
            pool: r.pool().map(|p| p.to_string()),
            interface: r.interface().map(|i| i.to_string()),
            families: [r.inet.as_str(), r.inet6.as_str()],
            leases: r
                .leases()
                .map(|(a, p, i)| (a, p.map(|p| p.to_string()), i.map(|i| i.to_string())))
                .collect(),
        }
    }
}

/// The result of `assign`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignReport {
    pub jail: JailName,
    pub now: Holding,
    /// What it held before; `None` when it held nothing.
    pub was: Option<Holding>,
    /// Already so: nothing was written.
    pub unchanged: bool,
}

/// The result of `release`: what the jail held, or `None` when the
/// inventory did not know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseReport {
    pub jail: JailName,
    pub released: Option<Holding>,
}

/// One jail of `import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportLine {
    Added(JailName, Holding),
    Updated(JailName, Holding),
    Unchanged(JailName),
    /// A jail.conf entry jnet cannot record, with why.
    Skipped(String, String),
}

/// The result of `import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The jail.conf read.
    pub path: PathBuf,
    pub jails: Vec<ImportLine>,
}

impl Engine {
    /// `jnet assign`: records `req` for `jail` (see `engine::addresses`).
    pub fn assign(&self, jail: &JailName, req: &AssignRequest) -> Result<AssignReport> {
        // why no host listing for inherit: it takes no address, so nothing
        // on the host can collide with it.
        let host: Vec<IfAddr> = match req {
            AssignRequest::Inherit { .. } => vec![],
            _ => os::stack_interface_addresses(),
        };
        let observed = Observed {
            jail_conf: self.conf_addrs()?,
            host: &host,
        };
        Ok(
            match addresses::assign(&self.config, self.store.as_ref(), jail, req, &observed)? {
                Outcome::Unchanged(r) => AssignReport {
                    jail: jail.clone(),
                    now: Holding::of(&r),
                    was: Some(Holding::of(&r)),
                    unchanged: true,
                },
                Outcome::Changed { record, previous } => AssignReport {
                    jail: jail.clone(),
                    now: Holding::of(&record),
                    was: previous.as_ref().map(Holding::of),
                    unchanged: false,
                },
            },
        )
    }

    /// `jnet release JAIL [--family F]`: forgets the jail's addresses, or
    /// its address of one family (refused while it runs).
    pub fn release(&self, jail: &JailName, family: Option<AddressFamily>) -> Result<ReleaseReport> {
        let released = addresses::release(self.store.as_ref(), jail, family)?;
        Ok(ReleaseReport {
            jail: jail.clone(),
            released: released.as_ref().map(Holding::of),
        })
    }

    /// `jnet import`: takes jail.conf's jails and their ip4 settings into
    /// the inventory, under the rules of `assign`.
    pub fn import(&self) -> Result<ImportReport> {
        let Some(path) = sources::jail_conf_path(&self.config, &self.config_path) else {
            return Err(Error::config(format!(
                "{}: host.jail_conf is not set; nothing to import",
                self.config.file
            )));
        };
        let jails = self.conf_jails()?;
        let host = os::stack_interface_addresses();
        let conf = jails_conf::ConfAddrs::from_jails(jails);
        let observed = Observed {
            jail_conf: &conf,
            host: &host,
        };
        let res = addresses::import(&self.config, self.store.as_ref(), jails, &observed)?;
        let jails = res
            .into_iter()
            .map(|r| match r {
                Imported::Added(n, rec) => ImportLine::Added(n, Holding::of(&rec)),
                Imported::Updated(n, rec) => ImportLine::Updated(n, Holding::of(&rec)),
                Imported::Unchanged(n) => ImportLine::Unchanged(n),
                Imported::Skipped(n, why) => ImportLine::Skipped(n, why),
            })
            .collect();
        Ok(ImportReport { path, jails })
    }
}
