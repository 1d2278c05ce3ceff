//! The model types the host adapters work on: what the engine asks a host
//! to create ([`JailSpec`] with its [`JailNetwork`], the exec settings
//! [`ExecOptions`] and the mounts [`MountEntry`]) and what a host reports
//! ([`IfAddr`], [`RunningJail`]). They live in core so that the pure
//! planner depends on no adapter; `os` implements its traits over them and
//! re-exports them.
//!
//! Data and pure helpers only: running commands, mounting and reading the
//! host are `os`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::names::{IfName, JailName, PoolName};
use serde::Serialize;

/// An address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub interface: String,
    pub address: IpAddr,
    pub prefix: u8,
}

/// An address a jail owns in one family, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnAddress<A> {
    pub address: A,
    /// The pool's prefix length. FreeBSD: the alias is a host route (/32,
    /// /128) when the address lies inside a prefix already on `interface`,
    /// else this prefix. Linux: the prefix on the jail's veth.
    pub prefix: u8,
    /// FreeBSD: the interface carrying the alias. Linux: the bridge the
    /// jail's veth is enslaved to, which holds `gateway`.
    pub interface: IfName,
    /// The jail's default route of this family (Linux), the pool's gateway.
    pub gateway: Option<A>,
}

/// One address family's side of a jail's network, as jail(8)'s `ip4` and
/// `ip6` parameters have it (usr.sbin/jail/jail.8: "inherit", "new",
/// "disable").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyNetwork<A> {
    /// The host's addresses of this family (`inherit`).
    Inherit,
    /// No address of this family (`disable`).
    Disable,
    /// Its own address (`new` with one address).
    Own(OwnAddress<A>),
}

impl<A> FamilyNetwork<A> {
    pub fn own(&self) -> Option<&OwnAddress<A>> {
        match self {
            FamilyNetwork::Own(o) => Some(o),
            _ => None,
        }
    }

    /// `inherit`, `disable` or `new`, as jail.conf writes the mode.
    pub fn mode(&self) -> &'static str {
        match self {
            FamilyNetwork::Inherit => "inherit",
            FamilyNetwork::Disable => "disable",
            FamilyNetwork::Own(_) => "new",
        }
    }
}

/// The network side of one jail, as the engine asks the host to set it
/// up: per family the host's addresses, none, or the jail's own. FreeBSD
/// gives an own address as an alias on the interface and passes the
/// families to jail_set; Linux gives a jail with any own address a netns
/// with a veth pair (and there a family cannot inherit while the other
/// has its own: a namespace holds both or neither).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailNetwork {
    pub inet: FamilyNetwork<Ipv4Addr>,
    pub inet6: FamilyNetwork<Ipv6Addr>,
}

impl JailNetwork {
    /// Shares the host's addresses and stack in both families.
    pub const INHERIT: JailNetwork = JailNetwork {
        inet: FamilyNetwork::Inherit,
        inet6: FamilyNetwork::Inherit,
    };

    /// An own IPv4 address; IPv6 disabled.
    pub fn inet_only(a: OwnAddress<Ipv4Addr>) -> JailNetwork {
        JailNetwork {
            inet: FamilyNetwork::Own(a),
            inet6: FamilyNetwork::Disable,
        }
    }

    /// Both families share the host's.
    pub fn is_inherit(&self) -> bool {
        matches!(
            (&self.inet, &self.inet6),
            (FamilyNetwork::Inherit, FamilyNetwork::Inherit)
        )
    }

    /// The jail owns an address in some family (a network to attach).
    pub fn has_own(&self) -> bool {
        self.inet.own().is_some() || self.inet6.own().is_some()
    }

    /// The jail's own addresses with prefix and interface, IPv4 first.
    pub fn own_addresses(&self) -> Vec<(IpAddr, u8, &IfName)> {
        let mut v = Vec::with_capacity(2);
        if let Some(o) = self.inet.own() {
            v.push((IpAddr::V4(o.address), o.prefix, &o.interface));
        }
        if let Some(o) = self.inet6.own() {
            v.push((IpAddr::V6(o.address), o.prefix, &o.interface));
        }
        v
    }
}

/// What the engine asks the host to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailSpec {
    pub name: JailName,
    /// Root directory; `/` means the host's root.
    pub path: PathBuf,
    pub hostname: Option<String>,
    pub network: JailNetwork,
    /// Extra jail(2) parameters from jail.conf (allow.*, etc.), already
    /// validated as `name=value` pairs.
    pub params: Vec<(String, String)>,
}

/// A jail the host reports as running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJail {
    /// jid on FreeBSD; a stable small id on Linux.
    pub id: u32,
    pub name: String,
    pub addresses: Vec<IpAddr>,
    pub path: PathBuf,
}

/// The exec.* settings of one jail (jail.conf), shared by all its commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// `exec.clean`: start from an empty environment.
    pub clean: bool,
    /// `exec.jail_user`: the account in-jail commands run as.
    pub jail_user: Option<String>,
    /// `exec.system_user`: the account host commands run as.
    pub system_user: Option<String>,
    /// `exec.system_jail_user`: look `jail_user` up on the host.
    pub system_jail_user: bool,
    /// `exec.fib`: the routing table of in-jail commands (FreeBSD setfib(2)).
    pub fib: Option<u32>,
    /// `exec.consolelog`: the host file in-jail commands' stdout and stderr
    /// are appended to.
    pub consolelog: Option<PathBuf>,
    /// `exec.timeout`: how long a command may run (None or 0: no limit).
    pub timeout: Option<Duration>,
}

impl ExecOptions {
    /// The account a command runs as (None: jnet's own).
    pub fn user_for(&self, in_jail: bool) -> Option<&str> {
        if in_jail {
            self.jail_user.as_deref()
        } else {
            self.system_user.as_deref()
        }
    }

    /// Whether the account of an in-jail (or host) command is looked up in
    /// the jail's files.
    pub fn lookup_in_jail(&self, in_jail: bool) -> bool {
        in_jail && !self.system_jail_user
    }

    pub fn consolelog_for(&self, in_jail: bool) -> Option<&Path> {
        self.consolelog.as_deref().filter(|_| in_jail)
    }

    pub fn fib_for(&self, in_jail: bool) -> Option<u32> {
        self.fib.filter(|_| in_jail)
    }
}

/// One filesystem jail(8) would mount for a jail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it comes from, for messages: `mount.devfs`, `mount
    /// (/etc/jail.conf:7)`, `mount.fstab /etc/fstab.www:3`.
    pub source: String,
    pub spec: String,
    /// The mount point (absolute).
    pub file: PathBuf,
    pub vfstype: String,
    /// `-o` options (fstab's fourth field; `ruleset=N` for devfs).
    pub options: Option<String>,
    /// One of jail(8)'s own mounts (devfs, fdescfs, procfs), unmounted
    /// without `-t` as command.c does.
    pub builtin: bool,
    /// The jail's root: no symbolic link is allowed below it on the way to
    /// `file` ([`symlink_below`]).
    pub root: PathBuf,
}

impl MountEntry {
    /// mount(8)'s arguments (without the program).
    pub fn mount_args(&self) -> Vec<String> {
        let mut v = vec!["-t".to_string(), self.vfstype.clone()];
        if let Some(o) = &self.options {
            v.push("-o".into());
            v.push(o.clone());
        }
        v.push(self.spec.clone());
        v.push(self.file.display().to_string());
        v
    }

    /// umount(8)'s arguments (without the program).
    pub fn umount_args(&self) -> Vec<String> {
        let file = self.file.display().to_string();
        if self.builtin {
            vec![file]
        } else {
            vec!["-t".into(), self.vfstype.clone(), file]
        }
    }
}

/// How a jail gets its IPv4 networking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Shares the host's addresses (ip4=inherit).
    Inherit,
    /// Has its own address (alias / netns).
    Dedicated,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Inherit => "inherit",
            Mode::Dedicated => "dedicated",
        }
    }
}

/// A dedicated address of one family as the inventory records it: the
/// address, the pool it was allocated from (None: given by hand outside
/// every pool) and the interface it lives on when not the pool's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease<A> {
    pub address: A,
    pub pool: Option<PoolName>,
    pub interface: Option<IfName>,
}

/// One family's side of a jail's record, with jail(8)'s three `ip4`/`ip6`
/// modes (usr.sbin/jail/jail.8: "inherit", "new", "disable"); `new` holds
/// exactly one lease (jnet gives a jail at most one address per family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FamilyLease<A> {
    Inherit,
    Disable,
    Dedicated(Lease<A>),
}

impl<A: Copy> FamilyLease<A> {
    pub fn lease(&self) -> Option<&Lease<A>> {
        match self {
            FamilyLease::Dedicated(l) => Some(l),
            _ => None,
        }
    }
    pub fn address(&self) -> Option<A> {
        self.lease().map(|l| l.address)
    }
    /// jail(8)'s word for the mode: `inherit`, `new` or `disable`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FamilyLease::Inherit => "inherit",
            FamilyLease::Disable => "disable",
            FamilyLease::Dedicated(_) => "new",
        }
    }
}

/// An address family, as pf and jail(8) name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    Inet,
    Inet6,
}

impl AddressFamily {
    pub fn of(a: &IpAddr) -> AddressFamily {
        match a {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        }
    }

    /// pf's and jnet's name: `inet`, `inet6`.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressFamily::Inet => "inet",
            AddressFamily::Inet6 => "inet6",
        }
    }
}

impl std::str::FromStr for AddressFamily {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "inet" | "ipv4" | "4" => Ok(AddressFamily::Inet),
            "inet6" | "ipv6" | "6" => Ok(AddressFamily::Inet6),
            _ => Err(format!("unknown address family {s:?} (inet or inet6)")),
        }
    }
}
