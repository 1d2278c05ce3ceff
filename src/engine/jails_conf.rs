//! What the engine takes from jail.conf: each jail's IPv4 and IPv6 modes,
//! static addresses and interface (for assignment), and the parameters the
//! lifecycle needs (path, hostname, exec.* lists and settings, mounts,
//! allow.*), reduced from the full parse in `core::jailconf`. It reads the
//! `mount.fstab` files jail.conf names; bad values are errors naming
//! file:line. What the platform cannot do (Linux: exec.fib and the mount
//! parameters) is listed in `ConfJail::unsupported`, which refuses a start
//! before anything is created.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// jail(8) `ip6`: `new`, `inherit` or `disable` (usr.sbin/jail/jail.8:
/// "ip6.addr, ip6.saddrsel, ip6: ... the counterparts to ip4.addr,
/// ip4.saddrsel and ip4").
pub use crate::core::jailconf::Ip6Mode;
use crate::core::jailconf::{JailDef, ValueRef};
use crate::core::plan::ExecHooks;
use crate::engine::facts_cache::{FileRecord, GlobRecord};
use crate::error::{Error, Result};
use crate::os::exec::ExecOptions;
use crate::os::mount::{self, Builtin, MountEntry};

/// One jail of jail.conf as far as jnet is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfJail {
    pub name: String,
    /// `file:line` of the jail's block.
    pub location: String,
    /// `ip4 = inherit`.
    pub inherit: bool,
    /// Addresses from `ip4.addr` (with their `iface|` prefix when given).
    pub addrs: Vec<(Option<String>, Ipv4Addr)>,
    /// `ip6`, explicit or implied (`new` when `ip6.addr` is set); None when
    /// neither is set.
    pub ip6: Option<Ip6Mode>,
    /// Addresses from `ip6.addr` (`addr`, `addr/prefix`,
    /// `iface|addr/prefix`), with their interface as in [`ConfJail::addrs`].
    pub addrs6: Vec<(Option<String>, Ipv6Addr)>,
    /// The `interface` parameter.
    pub interface: Option<String>,
    /// `path` (None: `/`).
    pub path: Option<PathBuf>,
    /// `host.hostname`.
    pub hostname: Option<String>,
    /// `exec.prestart`, `exec.start`, ... in jail.conf order (`+=` appends).
    pub exec: ExecHooks,
    /// `stop.timeout` in seconds (None: jail(8)'s default).
    pub stop_timeout: Option<std::time::Duration>,
    /// Parameters jail(8) would act on that jnet cannot honour, each with
    /// its `file:line`; a start of this jail is refused while any is set.
    pub unsupported: Vec<(String, String)>,
    /// `persist` (jail(8): keep the jail when its last process exits).
    pub persist: bool,
    /// `depend`: the jails this one needs running first, one name per
    /// value, as jail(8) reads it (usr.sbin/jail/state.c `dep_setup` looks
    /// each value up as a jail name; freebsd-src 20a9e238).
    pub depend: Vec<String>,
    /// Other jail(2) parameters jnet passes through (`allow.*`, ...), as
    /// `name=value` pairs; boolean parameters set without a value are
    /// `("allow.raw_sockets", "true")`.
    pub params: Vec<(String, String)>,
}

/// What address assignment needs of jail.conf: each jail's name, `file:line`
/// and static IPv4 and IPv6 addresses ([`ConfJail::addrs`],
/// [`ConfJail::addrs6`]), packed so that it can
/// be stored in and read back from the facts cache (`engine::facts_cache`)
/// without an allocation per jail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfAddrs {
    /// Every jail's name then location, back to back.
    text: String,
    /// Per jail: end of its name, end of its location in `text` (each
    /// starts where the previous one ends).
    jails: Vec<(u32, u32)>,
    /// (address, index into `jails`), in jail.conf order.
    addrs: Vec<(u32, u32)>,
    /// (IPv6 address, index into `jails`), in jail.conf order.
    addrs6: Vec<(u128, u32)>,
}

impl ConfAddrs {
    /// No jail.conf.
    pub const EMPTY: ConfAddrs = ConfAddrs {
        text: String::new(),
        jails: Vec::new(),
        addrs: Vec::new(),
        addrs6: Vec::new(),
    };

    pub fn from_jails(jails: &[ConfJail]) -> ConfAddrs {
        let mut out = ConfAddrs::default();
        for j in jails {
            out.push_jail_dual(
                &j.name,
                &j.location,
                j.addrs.iter().map(|(_, a)| *a),
                j.addrs6.iter().map(|(_, a)| *a),
            );
        }
        out
    }

    /// Adds one jail with IPv4 addresses only; false (nothing added) when
    /// the text would outgrow the u32 offsets.
    pub fn push_jail(&mut self, name: &str, location: &str, addrs: impl IntoIterator<Item = Ipv4Addr>) -> bool {
        self.push_jail_dual(name, location, addrs, [])
    }

    /// Adds one jail with its IPv4 and IPv6 addresses; false (nothing
    /// added) when the text would outgrow the u32 offsets.
    pub fn push_jail_dual(
        &mut self,
        name: &str,
        location: &str,
        addrs: impl IntoIterator<Item = Ipv4Addr>,
        addrs6: impl IntoIterator<Item = Ipv6Addr>,
    ) -> bool {
        let Ok(end) = u32::try_from(self.text.len() + name.len() + location.len()) else {
            return false;
        };
        let Ok(idx) = u32::try_from(self.jails.len()) else {
            return false;
        };
        self.text.push_str(name);
        let mid = self.text.len() as u32;
        self.text.push_str(location);
        self.jails.push((mid, end));
        self.addrs.extend(addrs.into_iter().map(|a| (u32::from(a), idx)));
        self.addrs6.extend(addrs6.into_iter().map(|a| (u128::from(a), idx)));
        true
    }

    fn jail(&self, idx: u32) -> (&str, &str) {
        let i = idx as usize;
        let start = if i == 0 { 0 } else { self.jails[i - 1].1 as usize };
        let (mid, end) = self.jails[i];
        (&self.text[start..mid as usize], &self.text[mid as usize..end as usize])
    }

    /// Every (jail name, location, address), in jail.conf order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Ipv4Addr)> + '_ {
        self.addrs.iter().map(|&(a, j)| {
            let (name, loc) = self.jail(j);
            (name, loc, Ipv4Addr::from(a))
        })
    }

    /// Every (jail name, location, IPv6 address), in jail.conf order.
    pub fn iter6(&self) -> impl Iterator<Item = (&str, &str, Ipv6Addr)> + '_ {
        self.addrs6.iter().map(|&(a, j)| {
            let (name, loc) = self.jail(j);
            (name, loc, Ipv6Addr::from(a))
        })
    }

    /// Number of jails.
    pub fn len(&self) -> usize {
        self.jails.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jails.is_empty()
    }

    /// The packed parts, for the facts cache.
    pub(crate) fn parts(&self) -> Packed<'_> {
        (&self.text, &self.jails, &self.addrs, &self.addrs6)
    }

    /// Rebuilds from [`ConfAddrs::parts`]; None when they do not fit
    /// together (a damaged cache).
    pub(crate) fn from_parts(
        text: String,
        jails: Vec<(u32, u32)>,
        addrs: Vec<(u32, u32)>,
        addrs6: Vec<(u128, u32)>,
    ) -> Option<ConfAddrs> {
        let mut prev = 0u32;
        for &(mid, end) in &jails {
            if mid < prev || end < mid || !text.is_char_boundary(mid as usize) || !text.is_char_boundary(end as usize) {
                return None;
            }
            prev = end;
        }
        if prev as usize != text.len()
            || addrs.iter().any(|&(_, j)| j as usize >= jails.len())
            || addrs6.iter().any(|&(_, j)| j as usize >= jails.len())
        {
            return None;
        }
        Some(ConfAddrs {
            text,
            jails,
            addrs,
            addrs6,
        })
    }
}

/// [`ConfAddrs`]' text, jail offsets, IPv4 and IPv6 addresses.
pub(crate) type Packed<'a> = (&'a str, &'a [(u32, u32)], &'a [(u32, u32)], &'a [(u128, u32)]);

/// What this platform's lifecycle can do of jail(8)'s userland settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// mount, mount.fstab, mount.devfs, mount.fdescfs, mount.procfs.
    pub mounts: bool,
    /// exec.fib (setfib(2)).
    pub fib: bool,
}

impl Support {
    /// FreeBSD runs mount(8) and setfib(2); Linux has neither (a jail's
    /// mounts would have to be made in its mount namespace, which jnet does
    /// not do).
    pub const HOST: Support = Support {
        mounts: cfg!(target_os = "freebsd"),
        fib: cfg!(target_os = "freebsd"),
    };
}

/// Reads jail.conf at `path` (with its includes) and reduces each jail.
/// Errors name file:line (syntax: file:line:column).
pub fn read(path: &std::path::Path) -> Result<Vec<ConfJail>> {
    read_for(path, Support::HOST)
}

/// [`read`] for a platform that can do `support`.
pub fn read_for(path: &std::path::Path, support: Support) -> Result<Vec<ConfJail>> {
    read_with(path, support, &crate::engine::jailconf_fs::FsLoader).map(|(jails, _)| jails)
}

/// The inputs of one jail.conf read, for the facts cache.
pub type Inputs = (Vec<FileRecord>, Vec<GlobRecord>);

/// [`read`], also recording every file and glob it read (see
/// `engine::facts_cache`); the record is None when the result may not be
/// cached: a file changed while it was read, or mount.fstab files (inputs
/// too) were read.
pub fn read_recorded(path: &std::path::Path) -> Result<(Vec<ConfJail>, Option<Inputs>)> {
    let rec = Recording::default();
    let (jails, fstab) = read_with(path, Support::HOST, &rec)?;
    let ok = !rec.failed.get() && !fstab;
    Ok((jails, ok.then(|| (rec.files.take(), rec.globs.take()))))
}

/// An [`FsLoader`](crate::engine::jailconf_fs::FsLoader) that records what
/// it read with each file's stamp and hash.
#[derive(Default)]
struct Recording {
    files: std::cell::RefCell<Vec<FileRecord>>,
    globs: std::cell::RefCell<Vec<GlobRecord>>,
    /// A file could not be read with its stamp (or changed meanwhile).
    failed: std::cell::Cell<bool>,
}

impl crate::core::jailconf::Loader for Recording {
    fn read(&self, path: &str) -> std::result::Result<String, String> {
        match crate::engine::facts_cache::read_stamped(std::path::Path::new(path)) {
            Ok((text, rec)) => {
                self.files.borrow_mut().push(rec);
                Ok(text)
            }
            // why again through FsLoader: its message is the one jail.conf
            // errors show without the cache.
            Err(_) => {
                self.failed.set(true);
                crate::engine::jailconf_fs::FsLoader.read(path)
            }
        }
    }

    fn glob(&self, pattern: &str) -> std::result::Result<Vec<String>, String> {
        let matches = crate::engine::jailconf_fs::FsLoader.glob(pattern)?;
        self.globs.borrow_mut().push(GlobRecord {
            pattern: pattern.to_string(),
            matches: matches.clone(),
        });
        Ok(matches)
    }
}

/// [`read_for`] through `loader`; also whether any jail names a
/// mount.fstab that this platform reads.
fn read_with(
    path: &std::path::Path,
    support: Support,
    loader: &dyn crate::core::jailconf::Loader,
) -> Result<(Vec<ConfJail>, bool)> {
    use crate::core::jailconf::{self, Ip4Mode};
    let conf = jailconf::load(&path.display().to_string(), loader)?;
    let fstab = support.mounts
        && conf
            .jails()
            .iter()
            .any(|j| j.strs("mount.fstab").iter().any(|f| !f.is_empty()));
    let jails = conf
        .jails()
        .iter()
        .map(|j| {
            let mode = j.ip4_mode()?;
            let addrs = j.ip4_addrs()?.into_iter().map(|e| (e.interface, e.address)).collect();
            let ip6 = j.ip6_mode()?;
            let addrs6 = j.ip6_addrs()?.into_iter().map(|e| (e.interface, e.address)).collect();
            Ok(ConfJail {
                name: j.name.clone(),
                location: j.location.to_string(),
                inherit: mode == Some(Ip4Mode::Inherit),
                addrs,
                ip6,
                addrs6,
                interface: j.interface().map(str::to_string),
                path: j.path().map(PathBuf::from),
                hostname: j.hostname().map(str::to_string),
                stop_timeout: stop_timeout(j)?,
                unsupported: unsupported(j, support),
                persist: j.get_bool("persist").unwrap_or(false),
                depend: j
                    .strs("depend")
                    .iter()
                    .filter(|d| !d.is_empty())
                    .map(str::to_string)
                    .collect(),
                exec: ExecHooks {
                    prepare: j.exec("prepare"),
                    prestart: j.exec("prestart"),
                    created: j.exec("created"),
                    // why: `command` is jail(8)'s exec.start given on its
                    // command line; jail.c `startcommands` runs it right
                    // after exec.start (IP_EXEC_START, IP_COMMAND), in the
                    // jail, and for a named jail command.c run_command()
                    // `case IP_COMMAND` runs it as exec.start's strings are
                    // (`goto default_command`). jail(8) l.750-758.
                    start: j.exec("start").into_iter().chain(command(j)).collect(),
                    poststart: j.exec("poststart"),
                    prestop: j.exec("prestop"),
                    stop: j.exec("stop"),
                    poststop: j.exec("poststop"),
                    release: j.exec("release"),
                    options: exec_options(j)?,
                    mounts: if support.mounts { mounts(j)? } else { Vec::new() },
                },
                params: passthrough_params(j),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((jails, fstab))
}

/// jail.conf's mount parameters (usr.sbin/jail/command.c `run_command`,
/// FreeBSD main 2022-07 e7646b05 l.467-595): done by jnet on FreeBSD,
/// refused where [`Support::mounts`] is false.
const MOUNT_PARAMS: &[&str] = &["mount", "mount.fstab", "mount.devfs", "mount.fdescfs", "mount.procfs"];

/// jail.conf parameters jail(8) acts on that jnet's lifecycle cannot do on
/// this platform (`support`). Starting without them would give the jail a
/// different life than `service jail start` does, so a start is refused
/// instead of ignoring them (F9). The exec.* settings other than exec.fib
/// are done on every platform (see `os::exec`).
///
/// VNET is refused on every platform: jnet's dedicated address is an alias
/// on the host's stack, and the kernel refuses address restrictions on a
/// VNET jail (sys/kern/kern_jail.c `kern_jail_set`: "vnet jails cannot
/// have IP address restrictions"), while an inherit jail would get a
/// stack of its own instead of the host's. `vnet = inherit` is the
/// default (the parent's stack) and passes.
fn unsupported(j: &JailDef, support: Support) -> Vec<(String, String)> {
    // why a lookup per refused name, not a scan of every parameter: the
    // scan (and a clone per parameter) was a tenth of reading a
    // 10,000-jail jail.conf (issue 10).
    let mounts: &[&str] = if support.mounts { &[] } else { MOUNT_PARAMS };
    let fib: &[&str] = if support.fib { &[] } else { &["exec.fib"] };
    let mut out: Vec<(String, String)> = mounts
        .iter()
        .chain(fib)
        .chain(&["vnet", "vnet.interface"])
        .filter(|&&k| match j.value(k) {
            None | Some(ValueRef::Bool(false)) => false,
            Some(ValueRef::Str("inherit")) if k == "vnet" => false,
            Some(_) => j.get_bool(k) != Some(false),
        })
        .map(|&k| (k.to_string(), at(j, k)))
        .collect();
    out.sort();
    out
}

/// `file:line` of parameter `name` (the jail's block when unknown).
fn at(j: &JailDef, name: &str) -> String {
    match j.param_source(name) {
        Some((file, line)) => format!("{file}:{line}"),
        None => j.location.to_string(),
    }
}

fn bad(j: &JailDef, name: &str, what: impl std::fmt::Display) -> Error {
    Error::data(format!("{}: jail {}: {name}: {what}", at(j, name), j.name))
}

/// The `command` values, as extra exec.start commands.
fn command(j: &JailDef) -> Vec<String> {
    j.strs("command")
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A single-valued parameter, or an error when given as a list.
fn single<'a>(j: &'a JailDef, name: &str) -> Result<Option<&'a str>> {
    match j.value(name) {
        None => Ok(None),
        Some(ValueRef::Str(s)) => Ok(Some(s)),
        Some(ValueRef::Bool(_)) => Err(bad(j, name, "needs a value")),
        Some(ValueRef::List(_)) => Err(bad(j, name, "takes one value, not a list")),
    }
}

/// A boolean setting (`exec.clean;`, `exec.clean = 1`), or an error.
fn flag(j: &JailDef, name: &str) -> Result<bool> {
    match j.value(name) {
        None => Ok(false),
        Some(_) => j
            .get_bool(name)
            .ok_or_else(|| bad(j, name, "expected a boolean (true, false, 0 or 1)")),
    }
}

/// A whole number as jail(8) reads it (`int_param`, strtol).
fn number(j: &JailDef, name: &str) -> Result<Option<u32>> {
    match single(j, name)? {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| bad(j, name, format!("{v:?} is not a whole number"))),
    }
}

/// A user name for exec.jail_user / exec.system_user.
fn user(j: &JailDef, name: &str) -> Result<Option<String>> {
    match single(j, name)? {
        None => Ok(None),
        Some(u) if u.is_empty() || u.contains([':', '\0', '\n', '/']) || u.starts_with('-') => {
            Err(bad(j, name, format!("{u:?} is not a user name")))
        }
        Some(u) => Ok(Some(u.to_string())),
    }
}

/// jail.conf's exec.* settings (jail(8) l.780-816; what each does is in
/// `os::exec`).
fn exec_options(j: &JailDef) -> Result<ExecOptions> {
    let consolelog = match single(j, "exec.consolelog")? {
        None => None,
        Some(p) if p.starts_with('/') && !p.contains('\0') => Some(PathBuf::from(p)),
        Some(p) => return Err(bad(j, "exec.consolelog", format!("{p:?} is not an absolute path"))),
    };
    Ok(ExecOptions {
        clean: flag(j, "exec.clean")?,
        jail_user: user(j, "exec.jail_user")?,
        system_user: user(j, "exec.system_user")?,
        system_jail_user: flag(j, "exec.system_jail_user")?,
        fib: number(j, "exec.fib")?,
        consolelog,
        timeout: number(j, "exec.timeout")?
            .filter(|n| *n > 0)
            .map(|n| std::time::Duration::from_secs(u64::from(n))),
    })
}

/// jail.conf's mounts in jail(8)'s order (jail.c `startcommands`: mount,
/// mount.fstab, mount.devfs, mount.fdescfs, mount.procfs); reads the
/// mount.fstab file.
fn mounts(j: &JailDef) -> Result<Vec<MountEntry>> {
    let root = PathBuf::from(j.path().unwrap_or("/"));
    let mut out = Vec::new();
    for line in j.get_list("mount") {
        let source = format!("mount ({})", at(j, "mount"));
        if let Some(m) = mount::parse_fstab_line(line, &source, &root).map_err(|e| bad(j, "mount", e))? {
            out.push(m);
        }
    }
    if let Some(file) = single(j, "mount.fstab")?.filter(|f| !f.is_empty()) {
        let text = std::fs::read_to_string(file).map_err(|e| bad(j, "mount.fstab", format!("read {file}: {e}")))?;
        for (i, line) in text.lines().enumerate() {
            let source = format!("mount.fstab {file}:{}", i + 1);
            match mount::parse_fstab_line(line, &source, &root) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::data(format!(
                        "{file}:{}: jail {} (mount.fstab at {}): {e}",
                        i + 1,
                        j.name,
                        at(j, "mount.fstab")
                    )))
                }
            }
        }
    }
    let ruleset = number(j, "devfs_ruleset")?.unwrap_or(mount::DEFAULT_DEVFS_RULESET);
    for (name, which) in [
        ("mount.devfs", Builtin::Devfs { ruleset }),
        ("mount.fdescfs", Builtin::Fdescfs),
        ("mount.procfs", Builtin::Procfs),
    ] {
        if flag(j, name)? {
            out.push(mount::builtin(&root, which).map_err(|e| bad(j, name, e))?);
        }
    }
    Ok(out)
}

/// `stop.timeout`: whole seconds, as jail(8) reads it with strtol
/// (command.c `term_procs`); 0 means "do not wait".
fn stop_timeout(j: &JailDef) -> Result<Option<std::time::Duration>> {
    let Some(v) = j.get_str("stop.timeout") else {
        return Ok(None);
    };
    match v.trim().parse::<u32>() {
        Ok(n) => Ok(Some(std::time::Duration::from_secs(u64::from(n)))),
        Err(_) => {
            let at = j
                .param_location("stop.timeout")
                .map(|l| l.to_string())
                .unwrap_or_else(|| j.location.to_string());
            Err(crate::error::Error::data(format!(
                "{at}: jail {}: stop.timeout {v:?} is not a whole number of seconds",
                j.name
            )))
        }
    }
}

/// jail(2) parameters jnet hands to the kernel as jail(8) would: `allow.*`
/// and a few scalar limits. Everything else in jail.conf (exec.*, mount.*,
/// ip4*, interface, path, host.hostname) jnet handles itself or leaves to
/// jail(8); the FreeBSD adapter validates names and values again.
fn passthrough_params(j: &JailDef) -> Vec<(String, String)> {
    // why ip6*: jail.conf's IPv6 settings reach jail_set as jail(8) passes
    // them; without them a jail loses IPv6 (finding F10).
    const SCALARS: &[&str] = &[
        "enforce_statfs",
        "securelevel",
        "children.max",
        "devfs_ruleset",
        "ip6",
        "ip6.addr",
        "ip6.saddrsel",
    ];
    j.iter()
        .filter(|(k, _)| k.starts_with("allow.") || SCALARS.contains(k))
        .filter_map(|(k, v)| match v {
            ValueRef::Bool(b) => Some((k.to_string(), b.to_string())),
            ValueRef::Str(s) if k == "ip6.addr" => Some((k.to_string(), kernel_addr(s).to_string())),
            ValueRef::Str(s) => Some((k.to_string(), s.to_string())),
            // A list parameter (ip6.addr) as libjail's comma-separated form.
            ValueRef::List(l) if k == "ip6.addr" => Some((
                k.to_string(),
                l.iter()
                    .filter(|s| !s.is_empty())
                    .map(kernel_addr)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
            ValueRef::List(_) => None,
        })
        .collect()
}

/// What jail(8) hands the kernel of an `ip6.addr` entry: the address
/// alone. usr.sbin/jail/config.c `ip_params` strips `iface|`, `/prefix`
/// and ifconfig options from each value before jailparam_import.
fn kernel_addr(entry: &str) -> &str {
    let s = entry.split_once('|').map_or(entry, |(_, r)| r);
    let s = s.split_once('/').map_or(s, |(a, _)| a);
    s.split_once(' ').map_or(s, |(a, _)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_jails() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jail.conf");
        std::fs::write(
            &p,
            "interface = em0;\nwww { ip4 = inherit; }\ndb { ip4.addr = \"lo1|10.66.0.5/24\", 10.66.0.6; }\nv { vnet; }\n",
        )
        .unwrap();
        let j = read(&p).unwrap();
        assert_eq!(j.len(), 3);
        assert!(j[0].inherit && j[0].addrs.is_empty());
        assert_eq!(
            j[1].addrs,
            vec![
                (Some("lo1".into()), "10.66.0.5".parse().unwrap()),
                (Some("em0".into()), "10.66.0.6".parse().unwrap())
            ]
        );
        assert_eq!(j[1].location, format!("{}:3", p.display()));
        assert!(!j[2].inherit && j[2].addrs.is_empty());
        assert!(j[0].unsupported.is_empty() && j[0].stop_timeout.is_none());
        std::fs::write(&p, "w { ip6 = new; ip6.addr = 2001:db8::5, 2001:db8::6; }\n").unwrap();
        let w = &read(&p).unwrap()[0];
        assert_eq!(
            w.params,
            [
                ("ip6".to_string(), "new".to_string()),
                ("ip6.addr".to_string(), "2001:db8::5, 2001:db8::6".to_string())
            ]
        );
        std::fs::write(&p, "www { ip4.addr = ; }\n").unwrap();
        let e = read(&p).unwrap_err();
        assert!(e.to_string().contains("jail.conf:1"), "{e}");
    }

    #[test]
    fn ip6_modes_and_addresses_in_every_form() {
        let (_d, p) = write(
            "interface = em0;
             a { ip6.addr = 2001:db8::5; }
             b { ip6 = new;
 ip6.addr = 2001:db8::6/64, \"lo1|2001:db8::7/128\", \"lo2|fd00::8\"; }
             c { ip6 = inherit; }
             d { ip6 = disable; ip4.addr = 10.0.0.1; }
             e { }
",
        );
        let j = read(&p).unwrap();
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(j[0].ip6, Some(Ip6Mode::New), "ip6.addr implies new");
        assert_eq!(j[0].addrs6, [(Some("em0".into()), v6("2001:db8::5"))]);
        assert_eq!(j[1].ip6, Some(Ip6Mode::New));
        assert_eq!(
            j[1].addrs6,
            [
                (Some("em0".into()), v6("2001:db8::6")),
                (Some("lo1".into()), v6("2001:db8::7")),
                (Some("lo2".into()), v6("fd00::8")),
            ]
        );
        // jail_set gets the addresses alone, as from jail(8).
        assert_eq!(
            j[1].params,
            [
                ("ip6".to_string(), "new".to_string()),
                ("ip6.addr".to_string(), "2001:db8::6, 2001:db8::7, fd00::8".to_string())
            ]
        );
        assert_eq!(j[0].params, [("ip6.addr".to_string(), "2001:db8::5".to_string())]);
        assert_eq!((j[2].ip6, j[2].addrs6.len()), (Some(Ip6Mode::Inherit), 0));
        assert_eq!((j[3].ip6, j[3].addrs6.len()), (Some(Ip6Mode::Disable), 0));
        assert_eq!(j[3].addrs, [(Some("em0".into()), "10.0.0.1".parse().unwrap())]);
        assert_eq!((j[4].ip6, j[4].addrs6.len()), (None, 0));
        // The packed statics keep both families apart; iter() is IPv4 only.
        let c = ConfAddrs::from_jails(&j);
        let loc = |i: usize| format!("{}:{}", p.display(), i);
        let six: Vec<(String, String, Ipv6Addr)> =
            c.iter6().map(|(n, l, a)| (n.to_string(), l.to_string(), a)).collect();
        assert_eq!(
            six,
            [
                ("a".to_string(), loc(2), v6("2001:db8::5")),
                ("b".to_string(), loc(3), v6("2001:db8::6")),
                ("b".to_string(), loc(3), v6("2001:db8::7")),
                ("b".to_string(), loc(3), v6("fd00::8")),
            ]
        );
        let four: Vec<(&str, Ipv4Addr)> = c.iter().map(|(n, _, a)| (n, a)).collect();
        assert_eq!(four, [("d", "10.0.0.1".parse().unwrap())]);
    }

    #[test]
    fn bad_ip6_values_name_file_and_line() {
        for (line, want) in [
            ("ip6.addr = 2001:db8::zz;", "invalid IPv6 address"),
            ("ip6.addr = 10.0.0.1;", "invalid IPv6 address"),
            ("ip6.addr = 2001:db8::1/129;", "between 0 and 128"),
            ("ip6.addr = \"|2001:db8::1\";", "invalid interface name"),
            ("ip6 = sometimes;", "expected inherit, new or disable"),
            (
                "ip6 = disable; ip6.addr = 2001:db8::1;",
                "ip6.addr is set but ip6 = disable",
            ),
        ] {
            let (_d, p) = write(&format!("w {{\n path = /j/w;\n {line}\n}}\n"));
            let e = read(&p).unwrap_err().to_string();
            assert!(
                e.contains("jail.conf:3") && e.contains("jail w") && e.contains(want),
                "{line}: {e}"
            );
        }
    }

    const LINUX: Support = Support {
        mounts: false,
        fib: false,
    };
    const FREEBSD: Support = Support {
        mounts: true,
        fib: true,
    };

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("jail.conf");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn hooks_stop_timeout_and_unsupported_parameters() {
        let (_d, p) = write(
            "w {\n exec.prepare = \"zfs mount z/w\";\n exec.created = \"logger c\";\n exec.release = \"zfs umount z/w\";\n stop.timeout = 3;\n mount.devfs;\n exec.jail_user = www;\n exec.clean = false;\n exec.fib = 1;\n}\n",
        );
        let j = &read_for(&p, LINUX).unwrap()[0];
        assert_eq!(j.exec.prepare, ["zfs mount z/w"]);
        assert_eq!(j.exec.created, ["logger c"]);
        assert_eq!(j.exec.release, ["zfs umount z/w"]);
        assert_eq!(j.stop_timeout, Some(std::time::Duration::from_secs(3)));
        let names: Vec<&str> = j.unsupported.iter().map(|(k, _)| k.as_str()).collect();
        // Linux: the mounts and exec.fib are refused; exec.jail_user is done.
        assert_eq!(names, ["exec.fib", "mount.devfs"]);
        assert!(j.unsupported[1].1.ends_with("jail.conf:6"), "{:?}", j.unsupported);
        assert!(j.exec.mounts.is_empty());
        assert_eq!(j.exec.options.jail_user.as_deref(), Some("www"));
        assert_eq!(j.exec.options.fib, Some(1));
        // FreeBSD: nothing refused, but mount.devfs needs the jail's path.
        let e = read_for(&p, FREEBSD).unwrap_err().to_string();
        assert!(
            e.contains("jail.conf:6") && e.contains("mount.devfs") && e.contains("jail w"),
            "{e}"
        );
        std::fs::write(&p, "w { stop.timeout = soon; }\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("stop.timeout") && e.contains("jail w"), "{e}");
    }

    #[test]
    fn vnet_is_refused_on_every_platform_unless_inherited() {
        let (_d, p) =
            write("a { vnet; }\nb { vnet = new;\n vnet.interface = epair0b; }\nc { vnet = inherit; }\nd { novnet; }\n");
        for support in [LINUX, FREEBSD] {
            let j = read_for(&p, support).unwrap();
            let names = |i: usize| j[i].unsupported.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
            assert_eq!(names(0), ["vnet"]);
            assert_eq!(names(1), ["vnet", "vnet.interface"]);
            assert!(j[1].unsupported[1].1.ends_with("jail.conf:3"), "{:?}", j[1].unsupported);
            assert!(
                names(2).is_empty() && names(3).is_empty(),
                "{:?} {:?}",
                names(2),
                names(3)
            );
        }
    }

    #[test]
    fn exec_options_are_read_and_bad_values_name_file_and_line() {
        let (_d, p) = write(
            "w {\n exec.clean;\n exec.jail_user = www;\n exec.system_user = op;\n exec.system_jail_user = 1;\n \
             exec.fib = 2;\n exec.consolelog = /var/log/jail_w.log;\n exec.timeout = 30;\n \
             exec.start = \"/bin/sh /etc/rc\";\n command = \"/usr/sbin/daemon x\";\n}\n",
        );
        let j = &read_for(&p, FREEBSD).unwrap()[0];
        let o = &j.exec.options;
        assert!(o.clean && o.system_jail_user);
        assert_eq!(
            (o.jail_user.as_deref(), o.system_user.as_deref()),
            (Some("www"), Some("op"))
        );
        assert_eq!(o.fib, Some(2));
        assert_eq!(
            o.consolelog.as_deref(),
            Some(std::path::Path::new("/var/log/jail_w.log"))
        );
        assert_eq!(o.timeout, Some(std::time::Duration::from_secs(30)));
        // `command` runs after exec.start, in the jail (jail.c startcommands).
        assert_eq!(j.exec.start, ["/bin/sh /etc/rc", "/usr/sbin/daemon x"]);
        assert!(j.unsupported.is_empty());
        for (line, name, want) in [
            ("exec.timeout = soon;", "exec.timeout", "not a whole number"),
            ("exec.fib = -1;", "exec.fib", "not a whole number"),
            ("exec.consolelog = log/w;", "exec.consolelog", "not an absolute path"),
            ("exec.jail_user = \"a:b\";", "exec.jail_user", "not a user name"),
            ("exec.jail_user = a, b;", "exec.jail_user", "not a list"),
            ("exec.clean = maybe;", "exec.clean", "expected a boolean"),
        ] {
            std::fs::write(&p, format!("w {{\n path = /j/w;\n {line}\n}}\n")).unwrap();
            let e = read_for(&p, FREEBSD).unwrap_err().to_string();
            assert!(
                e.contains("jail.conf:3") && e.contains(name) && e.contains(want) && e.contains("jail w"),
                "{line}: {e}"
            );
        }
    }

    #[test]
    fn mounts_in_jail_8_order_with_fstab_file() {
        let (d, p) = write("");
        let fstab = d.path().join("fstab.w");
        std::fs::write(
            &fstab,
            "# data\n/data /j/w/data nullfs ro 0 0\n\ntmpfs /j/w/tmp tmpfs rw,mode=1777 0 0\n",
        )
        .unwrap();
        std::fs::write(
            &p,
            format!(
                "w {{\n path = /j/w;\n mount.procfs;\n mount.devfs;\n devfs_ruleset = 5;\n mount.fdescfs;\n \
                 mount.fstab = {};\n mount = \"/src /j/w/src nullfs ro\";\n}}\n",
                fstab.display()
            ),
        )
        .unwrap();
        let j = &read_for(&p, FREEBSD).unwrap()[0];
        let files: Vec<String> = j.exec.mounts.iter().map(|m| m.file.display().to_string()).collect();
        assert_eq!(
            files,
            [
                "/j/w/src",
                "/j/w/data",
                "/j/w/tmp",
                "/j/w/dev",
                "/j/w/dev/fd",
                "/j/w/proc"
            ]
        );
        assert_eq!(j.exec.mounts[3].options.as_deref(), Some("ruleset=5"));
        assert!(
            j.exec.mounts[1].source.ends_with("fstab.w:2"),
            "{}",
            j.exec.mounts[1].source
        );
        // Linux: refused, the fstab file is not even read.
        let l = &read_for(&p, LINUX).unwrap()[0];
        let names: Vec<&str> = l.unsupported.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["mount", "mount.devfs", "mount.fdescfs", "mount.fstab", "mount.procfs"]
        );
        // A bad fstab line names the fstab file and line.
        std::fs::write(&fstab, "/data /j/w/data\n").unwrap();
        let e = read_for(&p, FREEBSD).unwrap_err().to_string();
        assert!(e.contains("fstab.w:1") && e.contains("missing information"), "{e}");
    }
}
