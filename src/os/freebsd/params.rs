//! jail(2) parameters: the kernel type of each parameter jnet knows,
//! validation of jail.conf extras, their binary encoding for jail_set, the
//! full parameter list for creating a jail from a [`JailSpec`], and the
//! `allow.mount.<fs>` module and `persist` rules jail(8)/libjail follow.
//!
//! Pure: no I/O, no syscall (the iovec is built in `iov`, the syscall is in
//! `sys`). Parameter types follow jail(8) ("Jail Parameters") and the
//! kernel's `security.jail.param` declarations; names are checked against a
//! known set rather than looked up with sysctl, so an unknown parameter is
//! refused here with a clear message instead of being sent with a guessed
//! type. jail(8)'s pseudo-parameters (exec.*, mount.*, ...) are refused: the
//! kernel does not know them.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::PlanError;
use crate::core::names::JailName;
use crate::os::{FamilyNetwork, JailSpec};

/// Buffer for a jail name read back with jail_get (MAXHOSTNAMELEN).
pub const NAME_BUF_LEN: usize = 256;
/// Buffer for a jail path read back with jail_get (MAXPATHLEN).
pub const PATH_BUF_LEN: usize = 1024;

/// jail(2) jailsys values.
pub const JAIL_SYS_DISABLE: i32 = 0;
pub const JAIL_SYS_NEW: i32 = 1;
pub const JAIL_SYS_INHERIT: i32 = 2;

/// How the kernel expects a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// NUL-terminated string.
    Str,
    /// C `int`.
    Int,
    /// C `unsigned long` (64-bit on amd64).
    ULong,
    /// Set by name alone (`persist`), cleared by the "no" name (`nopersist`).
    Bool,
    /// "disable" / "new" / "inherit" as an `int` (JAIL_SYS_*).
    JailSys,
    /// Array of `struct in_addr`, network byte order.
    InAddrs,
    /// Array of `struct in6_addr`.
    In6Addrs,
}

/// Parameters jnet sets itself from the [`JailSpec`]; extra params may not
/// repeat them.
const MANAGED: &[&str] = &["jid", "name", "path", "host.hostname", "ip4", "ip4.addr", "persist"];
/// Read-only parameters jail_set refuses.
const READ_ONLY: &[&str] = &["dying", "parent", "children.cur", "cpuset.id", "lastjid", "errmsg"];
/// jail(8) pseudo-parameters: jail(8) acts on them in userland, the kernel
/// does not know them.
const PSEUDO_PREFIXES: &[&str] = &["exec.", "mount.", "vnet.interface", "stop."];
const PSEUDO: &[&str] = &["interface", "ip_hostname", "mount", "depend", "command", "allow.dying"];

/// The kernel type of a known jail parameter (the "no" form of a boolean
/// included), or `None` for a name jnet does not know.
pub fn param_type(name: &str) -> Option<ParamType> {
    use ParamType::*;
    let t = match name {
        "name" | "path" | "host.hostname" | "host.domainname" | "host.hostuuid" | "osrelease" | "linux.osname"
        | "linux.osrelease" => Str,
        "jid" | "securelevel" | "devfs_ruleset" | "children.max" | "enforce_statfs" | "osreldate"
        | "linux.oss_version" | "zfs.mount_snapshot" => Int,
        "host.hostid" => ULong,
        "persist" | "ip4.saddrsel" | "ip6.saddrsel" => Bool,
        "ip4" | "ip6" | "vnet" | "host" | "sysvmsg" | "sysvsem" | "sysvshm" | "linux" => JailSys,
        "ip4.addr" => InAddrs,
        "ip6.addr" => In6Addrs,
        _ if name.starts_with("allow.") => Bool,
        _ => return bool_base(name).and_then(|b| (param_type(&b) == Some(Bool)).then_some(Bool)),
    };
    Some(t)
}

/// For a "no" boolean name (`nopersist`, `allow.noraw_sockets`) the positive
/// name; `None` otherwise.
fn bool_base(name: &str) -> Option<String> {
    let (head, last) = match name.rfind('.') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    };
    let rest = last.strip_prefix("no")?;
    (!rest.is_empty()).then(|| format!("{head}{rest}"))
}

/// The positive name of a boolean given in its "no" form
/// (`allow.nomount` -> `allow.mount`); any other name unchanged.
fn canonical_name(name: &str) -> String {
    match bool_base(name) {
        Some(base) if param_type(&base) == Some(ParamType::Bool) => base,
        _ => name.to_string(),
    }
}

/// The "no" form of a boolean name (`allow.mount` -> `allow.nomount`).
fn bool_negate(name: &str) -> String {
    match name.rfind('.') {
        Some(i) => format!("{}no{}", &name[..=i], &name[i + 1..]),
        None => format!("no{name}"),
    }
}

/// Parameter names are lower-case dotted words; anything else cannot be a
/// jail parameter and might smuggle bytes into the kernel request.
fn valid_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
}

/// One encoded name/value pair: the name NUL-terminated, the value in the
/// kernel's binary form (empty for booleans).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub(super) name: Vec<u8>,
    pub(super) value: Vec<u8>,
}

impl Param {
    pub(super) fn new(name: &str, value: Vec<u8>) -> Self {
        let mut n = Vec::with_capacity(name.len() + 1);
        n.extend_from_slice(name.as_bytes());
        n.push(0);
        Param { name: n, value }
    }
    pub(super) fn string(name: &str, value: &str) -> Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        Param::new(name, v)
    }
    pub(super) fn int(name: &str, value: i32) -> Self {
        Param::new(name, value.to_ne_bytes().to_vec())
    }
    pub(super) fn flag(name: &str) -> Self {
        Param::new(name, Vec::new())
    }
    /// An output buffer of `len` zero bytes for jail_get.
    pub(super) fn buffer(name: &str, len: usize) -> Self {
        Param::new(name, vec![0; len])
    }
    /// The name without its NUL.
    pub fn name(&self) -> &str {
        // Built only from &str in this module, so it is UTF-8.
        std::str::from_utf8(&self.name[..self.name.len() - 1]).unwrap_or("")
    }
    /// The encoded value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// A jailsys value for parameter `name`. `vnet` and `host` have no
/// "disable": the kernel declares them with `disable = 0` and rejects
/// JAIL_SYS_DISABLE with EINVAL and no message (sys/kern/kern_jail.c
/// `pr_flag_jailsys[]` and the jailsys loop in kern_jail_set(), FreeBSD main
/// e7646b05 l.185-197, 1063-1068), so jnet refuses it up front (F16).
fn parse_jailsys(name: &str, v: &str) -> Option<i32> {
    let sys = match v.to_ascii_lowercase().as_str() {
        "" | "new" => JAIL_SYS_NEW,
        "inherit" => JAIL_SYS_INHERIT,
        "disable" => JAIL_SYS_DISABLE,
        n => n.parse::<i32>().ok().filter(|i| (0..=2).contains(i))?,
    };
    (!(sys == JAIL_SYS_DISABLE && matches!(name, "vnet" | "host"))).then_some(sys)
}

/// A boolean value as libjail's jailparam_import() reads it: "true" /
/// "false" by name, else any integer, non-zero meaning true
/// (lib/libjail/jail.c, JPS_BOOL case via jailparam_import_enum() and
/// strtol, FreeBSD main e7646b05 l.457-471) (F16).
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" | "true" => Some(true),
        "false" => Some(false),
        n => n.parse::<i64>().ok().map(|i| i != 0),
    }
}

/// The kernel modules to kldload(2) before jail_set so that parameter
/// `name` exists, as libjail's kldload_param() does for `allow.mount.<fs>`:
/// the filesystem named after the prefix, and for a "no" name the name
/// without "no" (lib/libjail/jail.c kldload_param(), FreeBSD main e7646b05
/// l.1043-1062, called from jailparam_init() at l.899). `allow.mount.<fs>`
/// only exists once that VFS registered (sys/kern/kern_jail.c
/// prison_add_vfs(), l.4529-4544) (F4). Other parameters: none.
pub fn kld_modules_for_param(name: &str) -> Vec<String> {
    let Some(fs) = name.strip_prefix("allow.mount.") else {
        return Vec::new();
    };
    if fs.is_empty() || fs.contains('.') {
        return Vec::new();
    }
    let mut v = vec![fs.to_string()];
    if let Some(base) = fs.strip_prefix("no").filter(|b| !b.is_empty()) {
        v.push(base.to_string());
    }
    v
}

/// Whether jail.conf asked for `persist` (given as `persist`, `persist =
/// true`/1, or cleared with `nopersist`). jail(8) adds persist only while
/// it runs the start commands and clears it afterwards unless the user set
/// it (usr.sbin/jail/jail.c, FreeBSD main e7646b05 l.646-648, 714-717,
/// 726-747) (F14).
pub fn conf_requests_persist(params: &[(String, String)]) -> bool {
    let mut want = false;
    for (name, value) in params {
        match name.as_str() {
            "persist" => want = parse_bool(value).unwrap_or(false),
            "nopersist" => want = !parse_bool(value).unwrap_or(true),
            _ => {}
        }
    }
    want
}

/// The JAIL_UPDATE parameter list that clears `persist` on jail `jid`, as
/// jail(8) sends it after exec.poststart (`jid` + `nopersist`;
/// usr.sbin/jail/jail.c l.726-747, FreeBSD main e7646b05). The kernel then
/// removes the jail when its last process exits (jail(8) l.468-475).
pub fn clear_persist_params(jid: i32) -> Vec<Param> {
    vec![Param::int("jid", jid), Param::flag("nopersist")]
}

/// Validates one extra parameter from jail.conf and encodes it. Parameters
/// jnet manages itself, read-only and jail(8)-only ones are refused.
pub fn encode_param(jail: &JailName, name: &str, value: &str) -> Result<Param, PlanError> {
    let perr = |reason: &str| PlanError::Param {
        jail: jail.to_string(),
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let verr = |reason: String| PlanError::Value {
        jail: jail.to_string(),
        name: name.to_string(),
        value: value.to_string(),
        reason,
    };
    if !valid_param_name(name) {
        return Err(perr(
            "not a jail parameter name (lower-case letters, digits, '_' and '.')",
        ));
    }
    if MANAGED.contains(&name) || MANAGED.contains(&canonical_name(name).as_str()) {
        return Err(perr(
            "set by jnet from the jail's configuration, not as an extra parameter",
        ));
    }
    if READ_ONLY.contains(&name) {
        return Err(perr("read-only"));
    }
    if PSEUDO.contains(&name) || PSEUDO_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Err(perr("a jail(8) pseudo-parameter, not a kernel parameter"));
    }
    if value.contains('\0') {
        return Err(verr("contains a NUL byte".into()));
    }
    let Some(kind) = param_type(name) else {
        return Err(perr("unknown to jnet (see jail(8) \"Jail Parameters\")"));
    };
    Ok(match kind {
        ParamType::Str => {
            if value.len() >= PATH_BUF_LEN {
                return Err(verr(format!("longer than {} bytes", PATH_BUF_LEN - 1)));
            }
            Param::string(name, value)
        }
        ParamType::Int => Param::int(name, value.parse::<i32>().map_err(|_| verr("not an integer".into()))?),
        ParamType::ULong => Param::new(
            name,
            value
                .parse::<u64>()
                .map_err(|_| verr("not an unsigned integer".into()))?
                .to_ne_bytes()
                .to_vec(),
        ),
        ParamType::JailSys => Param::int(
            name,
            parse_jailsys(name, value).ok_or_else(|| {
                verr(if matches!(name, "vnet" | "host") {
                    "expected new or inherit (the kernel has no \"disable\" for it)".into()
                } else {
                    "expected new, inherit or disable".into()
                })
            })?,
        ),
        ParamType::Bool => {
            let on = parse_bool(value).ok_or_else(|| verr("expected true, false or an integer".into()))?;
            // why: the kernel reads booleans by name alone; "false" is sent
            // as the opposite name (persist / nopersist), as libjail does.
            let positive = canonical_name(name);
            let negated = positive != name;
            if on != negated {
                Param::flag(&positive)
            } else {
                Param::flag(&bool_negate(&positive))
            }
        }
        ParamType::InAddrs => {
            let mut v = Vec::new();
            for a in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let ip: Ipv4Addr = a.parse().map_err(|_| verr(format!("{a:?} is not an IPv4 address")))?;
                v.extend_from_slice(&ip.octets());
            }
            Param::new(name, v)
        }
        ParamType::In6Addrs => {
            // why: jail.conf writes `ip6.addr = [iface|]addr[/prefixlen]`;
            // jail(8) adds the alias itself for `iface|` and hands only the
            // address to the kernel (usr.sbin/jail/jail.8, `ip4.addr` /
            // `ip6.addr` and `interface`; usr.sbin/jail/config.c splits the
            // interface off, l.609-615; exact netmask-stripping line not
            // re-verified here). The kernel takes an array of bare
            // struct in6_addr (sys/kern/kern_jail.c, ip6.addr). jnet adds no
            // IPv6 aliases, so `iface|` is refused rather than ignored; the
            // prefix length only matters for the alias and is dropped.
            let mut v = Vec::new();
            for a in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if a.contains('|') {
                    return Err(verr(format!(
                        "{a:?}: jnet does not add IPv6 interface aliases; add the address to the interface and \
                         give it without 'iface|'"
                    )));
                }
                let bare = a.split_once('/').map_or(a, |(ip, _)| ip);
                let ip: Ipv6Addr = bare
                    .parse()
                    .map_err(|_| verr(format!("{a:?} is not an IPv6 address")))?;
                v.extend_from_slice(&ip.octets());
            }
            Param::new(name, v)
        }
    })
}

/// The full jail_set parameter list for creating `spec`'s jail: name, path,
/// host.hostname, ip4 (+ ip4.addr), persist, then the validated extras.
pub fn create_params(spec: &JailSpec) -> Result<Vec<Param>, PlanError> {
    let jail = &spec.name;
    let path_err = |reason| PlanError::Path {
        jail: jail.to_string(),
        path: spec.path.clone(),
        reason,
    };
    let path = spec.path.to_str().ok_or_else(|| path_err("not valid UTF-8"))?;
    if !spec.path.is_absolute() {
        return Err(path_err("must be absolute"));
    }
    if path.contains('\0') {
        return Err(path_err("contains a NUL byte"));
    }
    if path.len() >= PATH_BUF_LEN {
        return Err(path_err("longer than MAXPATHLEN"));
    }
    let mut out = vec![Param::string("name", jail.as_str()), Param::string("path", path)];
    if let Some(h) = &spec.hostname {
        if h.contains('\0') || h.len() >= NAME_BUF_LEN || h.is_empty() {
            return Err(PlanError::Value {
                jail: jail.to_string(),
                name: "host.hostname".into(),
                value: h.clone(),
                reason: "must be 1 to 255 bytes without NUL".into(),
            });
        }
        out.push(Param::string("host.hostname", h));
    }
    // why: the kernel takes bare addresses in network byte order (ip4.addr
    // an array of struct in_addr, ip6.addr of struct in6_addr:
    // sys/kern/kern_jail.c); the interface and prefix only matter for the
    // alias.
    match &spec.network.inet {
        FamilyNetwork::Inherit => out.push(Param::int("ip4", JAIL_SYS_INHERIT)),
        FamilyNetwork::Disable => out.push(Param::int("ip4", JAIL_SYS_DISABLE)),
        FamilyNetwork::Own(o) => {
            out.push(Param::int("ip4", JAIL_SYS_NEW));
            out.push(Param::new("ip4.addr", o.address.octets().to_vec()));
        }
    }
    // An own IPv6 address is jnet's to pass; otherwise jail.conf's `ip6`
    // settings pass through below (F10).
    if let FamilyNetwork::Own(o) = &spec.network.inet6 {
        out.push(Param::int("ip6", JAIL_SYS_NEW));
        out.push(Param::new("ip6.addr", o.address.octets().to_vec()));
    }
    // why: jnet creates the jail without attaching a process to it; without
    // persist the kernel would remove it at once.
    out.push(Param::flag("persist"));
    for (name, value) in &spec.params {
        let p = encode_param(jail, name, value)?;
        let canon = canonical_name(p.name());
        if out.iter().any(|q| canonical_name(q.name()) == canon) {
            return Err(PlanError::Param {
                jail: jail.to_string(),
                name: name.clone(),
                reason: "given more than once".into(),
            });
        }
        out.push(p);
    }
    // why: a non-VNET jail created without `ip6` gets IPv6 disabled
    // (sys/kern/kern_jail.c:1630-1637, FreeBSD main 2022-07 e7646b05), and
    // prison_check_af() then refuses AF_INET6 sockets (3317-3327). jnet's
    // "inherit" means the host's addresses of both families, as the port
    // check models it, so an inherit jail gets `ip6 = inherit` unless
    // jail.conf says otherwise (F10).
    if matches!(spec.network.inet6, FamilyNetwork::Inherit) && !out.iter().any(|p| canonical_name(p.name()) == "ip6") {
        out.push(Param::int("ip6", JAIL_SYS_INHERIT));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::freebsd::test_support::{dedicated, jn, names, spec};
    use crate::os::JailNetwork;
    use std::path::PathBuf;

    /// F16: no "disable" for vnet/host; integers as libjail reads them.
    #[test]
    fn jailsys_and_bool_values_match_kernel_and_libjail() {
        let j = jn("www");
        for name in ["vnet", "host"] {
            let e = encode_param(&j, name, "disable").unwrap_err().to_string();
            assert!(e.contains("no \"disable\""), "{e}");
            assert_eq!(encode_param(&j, name, "inherit").unwrap().value(), 2i32.to_ne_bytes());
        }
        assert_eq!(encode_param(&j, "ip6", "disable").unwrap().value(), 0i32.to_ne_bytes());
        assert_eq!(
            encode_param(&j, "allow.raw_sockets", "2").unwrap().name(),
            "allow.raw_sockets"
        );
        assert_eq!(
            encode_param(&j, "allow.raw_sockets", "-1").unwrap().name(),
            "allow.raw_sockets"
        );
        assert_eq!(
            encode_param(&j, "allow.raw_sockets", "0").unwrap().name(),
            "allow.noraw_sockets"
        );
        assert!(encode_param(&j, "allow.raw_sockets", "maybe").is_err());
    }

    /// F10: an inherit jail shares the host's IPv6 too, unless jail.conf
    /// sets `ip6`; a dedicated IPv4 jail keeps the kernel's default.
    #[test]
    fn inherit_jails_inherit_ip6_by_default() {
        let ip6 = |ps: &[Param]| ps.iter().find(|p| p.name() == "ip6").map(|p| p.value().to_vec());
        let ps = create_params(&spec(JailNetwork::INHERIT, &[])).unwrap();
        assert_eq!(ip6(&ps), Some(JAIL_SYS_INHERIT.to_ne_bytes().to_vec()));
        let ps = create_params(&spec(JailNetwork::INHERIT, &[("ip6", "disable")])).unwrap();
        assert_eq!(ip6(&ps), Some(0i32.to_ne_bytes().to_vec()));
        let ps = create_params(&spec(dedicated(), &[])).unwrap();
        assert_eq!(ip6(&ps), None);
    }

    /// Issue 9 B4: a jail's own IPv6 address goes to jail_set as `ip6 =
    /// new` and a one-element `ip6.addr` (struct in6_addr, network order);
    /// per family inherit and disable are `ip4`/`ip6` values; jail.conf
    /// cannot set again what jnet passes.
    #[test]
    fn per_family_network_params() {
        let own6 = crate::os::FamilyNetwork::Own(crate::os::OwnAddress {
            address: "2001:db8::5".parse::<Ipv6Addr>().unwrap(),
            prefix: 64,
            interface: crate::os::freebsd::test_support::ifn("vtnet0"),
            gateway: None,
        });
        let mut dual = dedicated();
        dual.inet6 = own6.clone();
        let ps = create_params(&spec(dual.clone(), &[])).unwrap();
        let get = |n: &str| ps.iter().find(|p| p.name() == n).map(|p| p.value().to_vec());
        assert_eq!(get("ip4"), Some(JAIL_SYS_NEW.to_ne_bytes().to_vec()));
        assert_eq!(get("ip4.addr"), Some(vec![10, 0, 0, 5]));
        assert_eq!(get("ip6"), Some(JAIL_SYS_NEW.to_ne_bytes().to_vec()));
        assert_eq!(
            get("ip6.addr"),
            Some("2001:db8::5".parse::<Ipv6Addr>().unwrap().octets().to_vec())
        );
        let e = create_params(&spec(dual, &[("ip6", "inherit")])).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
        // IPv6 only: IPv4 disabled.
        let only6 = JailNetwork {
            inet: crate::os::FamilyNetwork::Disable,
            inet6: own6,
        };
        let ps = create_params(&spec(only6, &[])).unwrap();
        let ip4 = ps.iter().find(|p| p.name() == "ip4").unwrap();
        assert_eq!(ip4.value(), JAIL_SYS_DISABLE.to_ne_bytes());
        assert!(!ps.iter().any(|p| p.name() == "ip4.addr"));
    }

    /// F10: ip6 (jailsys) and ip6.addr (struct in6_addr array) go to jail_set.
    #[test]
    fn ip6_params_are_passed() {
        let ps = create_params(&spec(
            dedicated(),
            &[("ip6", "new"), ("ip6.addr", "2001:db8::5/64, 2001:db8::6")],
        ))
        .unwrap();
        let ip6 = ps.iter().find(|p| p.name() == "ip6").unwrap();
        assert_eq!(ip6.value(), JAIL_SYS_NEW.to_ne_bytes());
        let addrs = ps.iter().find(|p| p.name() == "ip6.addr").unwrap();
        assert_eq!(addrs.value().len(), 32);
        assert_eq!(
            &addrs.value()[..16],
            &"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets()
        );
        let e = encode_param(&jn("www"), "ip6.addr", "em0|2001:db8::5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("IPv6 interface aliases"), "{e}");
    }

    /// F4: the filesystem module libjail's kldload_param() would load.
    #[test]
    fn kld_modules_for_allow_mount() {
        assert_eq!(kld_modules_for_param("allow.mount.nullfs"), ["nullfs"]);
        assert_eq!(kld_modules_for_param("allow.mount.nonullfs"), ["nonullfs", "nullfs"]);
        assert!(kld_modules_for_param("allow.mount").is_empty());
        assert!(kld_modules_for_param("allow.raw_sockets").is_empty());
        assert!(kld_modules_for_param("allow.mount.").is_empty());
    }

    /// F14: persist is cleared with jid + nopersist unless jail.conf set it.
    #[test]
    fn persist_clearing() {
        let ps = clear_persist_params(7);
        assert_eq!(names(&ps), ["jid", "nopersist"]);
        assert_eq!(ps[0].value(), 7i32.to_ne_bytes());
        assert!(ps[1].value().is_empty());
        let p = |v: &[(&str, &str)]| {
            conf_requests_persist(
                &v.iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        assert!(!p(&[]));
        assert!(p(&[("persist", "")]));
        assert!(p(&[("persist", "true")]));
        assert!(!p(&[("persist", "false")]));
        assert!(!p(&[("persist", ""), ("nopersist", "")]));
    }

    #[test]
    fn create_params_dedicated() {
        let ps = create_params(&spec(dedicated(), &[("allow.raw_sockets", ""), ("securelevel", "2")])).unwrap();
        assert_eq!(
            names(&ps),
            [
                "name",
                "path",
                "host.hostname",
                "ip4",
                "ip4.addr",
                "persist",
                "allow.raw_sockets",
                "securelevel"
            ]
        );
        assert_eq!(ps[0].value(), b"www\0");
        assert_eq!(ps[1].value(), b"/usr/jails/www\0");
        assert_eq!(ps[3].value(), JAIL_SYS_NEW.to_ne_bytes());
        assert_eq!(ps[4].value(), [10, 0, 0, 5]);
        assert!(ps[5].value().is_empty());
        assert!(ps[6].value().is_empty());
        assert_eq!(ps[7].value(), 2i32.to_ne_bytes());
    }

    #[test]
    fn create_params_inherit_without_hostname() {
        let mut s = spec(JailNetwork::INHERIT, &[]);
        s.hostname = None;
        let ps = create_params(&s).unwrap();
        assert_eq!(names(&ps), ["name", "path", "ip4", "persist", "ip6"]);
        assert_eq!(ps[2].value(), JAIL_SYS_INHERIT.to_ne_bytes());
        assert_eq!(ps[4].value(), JAIL_SYS_INHERIT.to_ne_bytes());
    }

    #[test]
    fn bool_values_become_names() {
        let j = jn("www");
        let p = encode_param(&j, "allow.mount", "false").unwrap();
        assert_eq!((p.name(), p.value()), ("allow.nomount", &[][..]));
        let p = encode_param(&j, "allow.nomount", "false").unwrap();
        assert_eq!(p.name(), "allow.mount");
        let p = encode_param(&j, "allow.nomount", "").unwrap();
        assert_eq!(p.name(), "allow.nomount");
        let p = encode_param(&j, "ip4.saddrsel", "0").unwrap();
        assert_eq!(p.name(), "ip4.nosaddrsel");
        assert!(encode_param(&j, "allow.mount", "maybe").is_err());
    }

    #[test]
    fn typed_values() {
        let j = jn("www");
        assert_eq!(encode_param(&j, "vnet", "new").unwrap().value(), 1i32.to_ne_bytes());
        assert_eq!(
            encode_param(&j, "sysvshm", "Inherit").unwrap().value(),
            2i32.to_ne_bytes()
        );
        assert_eq!(encode_param(&j, "ip6", "disable").unwrap().value(), 0i32.to_ne_bytes());
        assert_eq!(
            encode_param(&j, "host.hostid", "7").unwrap().value(),
            7u64.to_ne_bytes()
        );
        assert_eq!(
            encode_param(&j, "osrelease", "14.1-RELEASE").unwrap().value(),
            b"14.1-RELEASE\0"
        );
        let v6 = encode_param(&j, "ip6.addr", "2001:db8::5, ::1").unwrap();
        assert_eq!(v6.value().len(), 32);
        assert_eq!(v6.value()[15], 5);
        for (n, v) in [
            ("vnet", "maybe"),
            ("securelevel", "x"),
            ("children.max", "1.5"),
            ("ip6.addr", "10.0.0.1"),
        ] {
            assert!(
                matches!(encode_param(&j, n, v), Err(PlanError::Value { .. })),
                "{n}={v}"
            );
        }
    }

    #[test]
    fn refused_names() {
        let j = jn("www");
        for n in [
            "name",
            "ip4.addr",
            "persist",
            "nopersist",
            "path",
            "dying",
            "exec.start",
            "mount.devfs",
            "interface",
            "allow.dying",
            "vnet.interface",
            "Allow.mount",
            "a b",
            "allow..x",
            ".x",
            "x.",
            "a\0b",
            "frobnicate",
            "",
        ] {
            assert!(matches!(encode_param(&j, n, ""), Err(PlanError::Param { .. })), "{n:?}");
        }
        assert!(matches!(
            encode_param(&j, "osrelease", "a\0b"),
            Err(PlanError::Value { .. })
        ));
        let e = encode_param(&j, "exec.start", "x").unwrap_err().to_string();
        assert_eq!(
            e,
            "jail www: parameter \"exec.start\": a jail(8) pseudo-parameter, not a kernel parameter"
        );
    }

    #[test]
    fn duplicate_extra_params() {
        for pair in [
            [("allow.mount", ""), ("allow.nomount", "")],
            [("allow.nomount", ""), ("allow.mount", "0")],
        ] {
            let e = create_params(&spec(JailNetwork::INHERIT, &pair));
            assert!(
                matches!(e, Err(PlanError::Param { ref reason, .. }) if reason == "given more than once"),
                "{e:?}"
            );
        }
        assert!(create_params(&spec(
            JailNetwork::INHERIT,
            &[("securelevel", "1"), ("securelevel", "2")]
        ))
        .is_err());
    }

    #[test]
    fn bad_paths_and_hostnames() {
        let mut s = spec(JailNetwork::INHERIT, &[]);
        s.path = PathBuf::from("jails/www");
        assert!(matches!(create_params(&s), Err(PlanError::Path { .. })));
        let mut s = spec(JailNetwork::INHERIT, &[]);
        s.hostname = Some("a\0b".into());
        assert!(create_params(&s).is_err());
    }
}
