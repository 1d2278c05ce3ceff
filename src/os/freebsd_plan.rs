//! Pure building blocks of the FreeBSD adapter, compiled on every platform so
//! they are unit-tested on Linux: jail(2) parameter validation and encoding,
//! the iovec list handed to jail_set/jail_get (with its `errmsg` buffer), the
//! byte layout of the interface-address ioctl requests (netintro(4):
//! SIOCAIFADDR with `struct in_aliasreq`, SIOCDIFADDR with `struct ifreq`),
//! the mask choice for aliases, pfctl(8) argument lists, and the small
//! decoders for what the kernel and pfctl hand back.
//!
//! It does no I/O and calls no syscall. The syscalls live in
//! `os/freebsd/sys.rs`; this module only builds and reads the memory they
//! use. Parameter types follow jail(8) ("Jail Parameters") and the kernel's
//! `security.jail.param` declarations; names are checked against a known set
//! rather than looked up with sysctl, so an unknown parameter is refused
//! here with a clear message instead of being sent with a guessed type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::core::names::{IfName, JailName};
use crate::os::{IfAddr, JailNetwork, JailSpec};

/// Size of the `errmsg` buffer, as libjail's JAIL_ERRMSGLEN.
pub const JAIL_ERRMSGLEN: usize = 1024;
/// Buffer for a jail name read back with jail_get (MAXHOSTNAMELEN).
pub const NAME_BUF_LEN: usize = 256;
/// Buffer for a jail path read back with jail_get (MAXPATHLEN).
pub const PATH_BUF_LEN: usize = 1024;
/// IFNAMSIZ on FreeBSD (name plus NUL).
pub const IFNAMSIZ: usize = 16;
/// AF_INET on FreeBSD.
pub const AF_INET: u8 = 2;
/// `sizeof(struct sockaddr_in)` on FreeBSD (it starts with `sin_len`).
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct in_aliasreq)` on amd64 (<netinet/in_var.h>).
pub const IN_ALIASREQ_LEN: usize = IFNAMSIZ + 3 * SOCKADDR_IN_LEN + 4;
/// `sizeof(struct ifreq)` on amd64 (<net/if.h>).
pub const IFREQ_LEN: usize = 32;

/// jail(2) jailsys values.
pub const JAIL_SYS_DISABLE: i32 = 0;
pub const JAIL_SYS_NEW: i32 = 1;
pub const JAIL_SYS_INHERIT: i32 = 2;

/// `_IOW(group, num, len)` from <sys/ioccom.h>: IOC_IN | len << 16 | group << 8 | num.
pub const fn ioc_write(group: u8, num: u8, len: usize) -> u64 {
    const IOC_IN: u64 = 0x8000_0000;
    const IOCPARM_MASK: u64 = 0x1fff;
    IOC_IN | (((len as u64) & IOCPARM_MASK) << 16) | ((group as u64) << 8) | num as u64
}

/// Add (or change) an interface address: `_IOW('i', 43, struct in_aliasreq)`.
pub const SIOCAIFADDR: u64 = ioc_write(b'i', 43, IN_ALIASREQ_LEN);
/// Delete an interface address: `_IOW('i', 25, struct ifreq)`.
pub const SIOCDIFADDR: u64 = ioc_write(b'i', 25, IFREQ_LEN);

// The values DESIGN.md section 7 recorded from <sys/sockio.h> on amd64.
const _: () = assert!(IN_ALIASREQ_LEN == 68);
const _: () = assert!(SIOCAIFADDR == 0x8044_692b);
const _: () = assert!(SIOCDIFADDR == 0x8020_6919);

/// Why a request could not be turned into kernel or pfctl input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("jail {jail}: parameter {name:?}: {reason}")]
    Param { jail: String, name: String, reason: String },
    #[error("jail {jail}: parameter {name} = {value:?}: {reason}")]
    Value {
        jail: String,
        name: String,
        value: String,
        reason: String,
    },
    #[error("jail {jail}: path {path:?}: {reason}")]
    Path {
        jail: String,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("interface {interface}: address {address}/{prefix}: {reason}")]
    Alias {
        interface: String,
        address: Ipv4Addr,
        prefix: u8,
        reason: String,
    },
    #[error("pf anchor root {root:?}: {reason}")]
    Anchor { root: String, reason: &'static str },
}

// ---------------------------------------------------------------------------
// jail(2) parameters

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
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Param {
    fn new(name: &str, value: Vec<u8>) -> Self {
        let mut n = Vec::with_capacity(name.len() + 1);
        n.extend_from_slice(name.as_bytes());
        n.push(0);
        Param { name: n, value }
    }
    fn string(name: &str, value: &str) -> Self {
        let mut v = value.as_bytes().to_vec();
        v.push(0);
        Param::new(name, v)
    }
    fn int(name: &str, value: i32) -> Self {
        Param::new(name, value.to_ne_bytes().to_vec())
    }
    fn flag(name: &str) -> Self {
        Param::new(name, Vec::new())
    }
    /// An output buffer of `len` zero bytes for jail_get.
    fn buffer(name: &str, len: usize) -> Self {
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
    match &spec.network {
        JailNetwork::Inherit => out.push(Param::int("ip4", JAIL_SYS_INHERIT)),
        JailNetwork::Dedicated { address, .. } => {
            out.push(Param::int("ip4", JAIL_SYS_NEW));
            // why: the kernel takes bare addresses in network byte order;
            // the interface and mask only matter for the alias.
            out.push(Param::new("ip4.addr", address.octets().to_vec()));
        }
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
    if matches!(spec.network, JailNetwork::Inherit) && !out.iter().any(|p| canonical_name(p.name()) == "ip6") {
        out.push(Param::int("ip6", JAIL_SYS_INHERIT));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The iovec list

/// The name/value iovec array for jail_set/jail_get plus the buffers it
/// points to.
///
/// why: the iovecs hold raw pointers into `params` and `errmsg`. Those are
/// heap buffers owned by this struct and never resized after construction,
/// so the pointers stay valid for as long as the struct lives, including
/// across moves of the struct itself (moving a `Vec` does not move its heap
/// data). The syscall wrapper borrows the whole struct mutably for the
/// duration of the call, so nothing can free a buffer while the kernel
/// writes into it.
pub struct JailIov {
    params: Vec<Param>,
    errmsg: Vec<u8>,
    iov: Vec<libc::iovec>,
}

const ERRMSG_NAME: &[u8] = b"errmsg\0";

impl JailIov {
    /// Builds the list for `params` and appends the `errmsg` pair.
    pub fn new(params: Vec<Param>) -> Self {
        let mut s = JailIov {
            params,
            errmsg: vec![0; JAIL_ERRMSGLEN],
            iov: Vec::new(),
        };
        let mut iov = Vec::with_capacity(2 * (s.params.len() + 1));
        for p in &mut s.params {
            iov.push(libc::iovec {
                iov_base: p.name.as_mut_ptr().cast(),
                iov_len: p.name.len(),
            });
            // why: a boolean has no value; the kernel wants NULL/0 for it.
            let base = if p.value.is_empty() {
                std::ptr::null_mut()
            } else {
                p.value.as_mut_ptr().cast()
            };
            iov.push(libc::iovec {
                iov_base: base,
                iov_len: p.value.len(),
            });
        }
        // The kernel never writes to the name; the cast to *mut is what
        // struct iovec's type demands.
        iov.push(libc::iovec {
            iov_base: ERRMSG_NAME.as_ptr() as *mut libc::c_void,
            iov_len: ERRMSG_NAME.len(),
        });
        iov.push(libc::iovec {
            iov_base: s.errmsg.as_mut_ptr().cast(),
            iov_len: s.errmsg.len(),
        });
        s.iov = iov;
        s
    }

    /// The list for reading the jail after `lastjid` (enumeration): jid,
    /// name, path and up to `ip4_slots` IPv4 addresses.
    pub fn get_next(lastjid: i32, ip4_slots: usize) -> Self {
        JailIov::new(vec![
            Param::int("lastjid", lastjid),
            Param::int("jid", 0),
            Param::buffer("name", NAME_BUF_LEN),
            Param::buffer("path", PATH_BUF_LEN),
            Param::buffer("ip4.addr", 4 * ip4_slots),
        ])
    }

    /// The list for looking a jail up by name (jid only).
    pub fn get_by_name(name: &JailName) -> Self {
        JailIov::new(vec![Param::string("name", name.as_str())])
    }

    /// Pointer and count for the syscall.
    pub fn as_mut_parts(&mut self) -> (*mut libc::iovec, u32) {
        (self.iov.as_mut_ptr(), self.iov.len() as u32)
    }

    /// The raw iovec array (for inspection in tests and logs).
    pub fn iovecs(&self) -> &[libc::iovec] {
        &self.iov
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The kernel's error message, if it wrote one.
    pub fn errmsg(&self) -> Option<String> {
        decode_errmsg(&self.errmsg)
    }

    /// A value as the kernel returned it: the buffer cut to the length the
    /// kernel wrote back into the iovec.
    pub fn value_out(&self, name: &str) -> Option<&[u8]> {
        let i = self.params.iter().position(|p| p.name() == name)?;
        let buf = &self.params[i].value;
        let n = self.iov[2 * i + 1].iov_len.min(buf.len());
        Some(&buf[..n])
    }

    /// Test helper and simulation hook: pretends the kernel wrote `bytes`
    /// into the value of `name`, as jail_get does.
    pub fn set_value_out(&mut self, name: &str, bytes: &[u8]) -> bool {
        let Some(i) = self.params.iter().position(|p| p.name() == name) else {
            return false;
        };
        let buf = &mut self.params[i].value;
        if bytes.len() > buf.len() {
            return false;
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        self.iov[2 * i + 1].iov_len = bytes.len();
        true
    }

    /// Decodes the result of a [`JailIov::get_next`] call that returned `jid`.
    pub fn decode_jail(&self, jid: i32) -> JailInfo {
        JailInfo {
            jid,
            name: self.value_out("name").map(decode_cstr).unwrap_or_default(),
            path: PathBuf::from(self.value_out("path").map(decode_cstr).unwrap_or_default()),
            ip4: self.value_out("ip4.addr").map(decode_in_addrs).unwrap_or_default(),
        }
    }
}

/// A jail as read back with jail_get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailInfo {
    pub jid: i32,
    pub name: String,
    pub path: PathBuf,
    pub ip4: Vec<Ipv4Addr>,
}

/// The text in a NUL-terminated (or full) buffer.
pub fn decode_cstr(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The kernel's `errmsg`: `None` when it left the buffer empty.
pub fn decode_errmsg(buf: &[u8]) -> Option<String> {
    let s = decode_cstr(buf);
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// An array of `struct in_addr` (network byte order); a trailing partial
/// element is ignored.
pub fn decode_in_addrs(buf: &[u8]) -> Vec<Ipv4Addr> {
    buf.chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect()
}

// ---------------------------------------------------------------------------
// Interface aliases

/// What attaching an address needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasPlan {
    /// Add the alias with this prefix length.
    Add { prefix: u8 },
    /// The address is already on the interface: nothing to do.
    Present,
}

fn contains(net: Ipv4Addr, prefix: u8, addr: Ipv4Addr) -> bool {
    let mask = prefix_mask(prefix);
    u32::from(net) & mask == u32::from(addr) & mask
}

/// The netmask of a prefix length, host order.
pub fn prefix_mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

/// The prefix length of a contiguous netmask; `None` when it has holes.
pub fn mask_prefix(mask: IpAddr) -> Option<u8> {
    let (bits, ones) = match mask {
        IpAddr::V4(m) => (u128::from(u32::from(m)) << 96, u32::from(m).count_ones()),
        IpAddr::V6(m) => (u128::from(m), u128::from(m).count_ones()),
    };
    (bits.leading_ones() == ones).then_some(ones as u8)
}

/// Decides how to attach `address` to `interface` given the addresses the
/// host already has: /32 when it lies inside a subnet already configured on
/// that interface (a second address with the subnet's mask would be
/// refused or would duplicate the subnet route), else `prefix`. An address
/// that is already on the interface is left alone; one that is on another
/// interface is an error.
pub fn plan_alias(
    address: Ipv4Addr,
    prefix: u8,
    interface: &IfName,
    existing: &[IfAddr],
) -> Result<AliasPlan, PlanError> {
    let err = |reason: String| PlanError::Alias {
        interface: interface.to_string(),
        address,
        prefix,
        reason,
    };
    if prefix == 0 || prefix > 32 {
        return Err(err("prefix length must be 1 to 32".into()));
    }
    if address.is_unspecified() || address.is_broadcast() || address.is_multicast() {
        return Err(err("not a unicast address".into()));
    }
    if let Some(other) = existing.iter().find(|a| a.address == IpAddr::V4(address)) {
        return if other.interface == interface.as_str() {
            Ok(AliasPlan::Present)
        } else {
            Err(err(format!("already configured on interface {}", other.interface)))
        };
    }
    let inside = existing.iter().any(|a| {
        a.interface == interface.as_str()
            && matches!(a.address, IpAddr::V4(net) if a.prefix < 32 && contains(net, a.prefix, address))
    });
    Ok(AliasPlan::Add {
        prefix: if inside { 32 } else { prefix },
    })
}

/// Whether `address` is on `interface` (detach is a no-op otherwise).
pub fn alias_present(address: Ipv4Addr, interface: &IfName, existing: &[IfAddr]) -> bool {
    existing
        .iter()
        .any(|a| a.interface == interface.as_str() && a.address == IpAddr::V4(address))
}

fn put_name(buf: &mut [u8], ifname: &IfName) {
    // IfName is at most 15 bytes, so the NUL at [15] always remains.
    let n = ifname.as_str().as_bytes();
    buf[..n.len()].copy_from_slice(n);
}

/// `struct sockaddr_in` as FreeBSD lays it out: sin_len, sin_family,
/// sin_port (network order), sin_addr (network order), 8 zero bytes.
pub fn encode_sockaddr_in(addr: Ipv4Addr) -> [u8; SOCKADDR_IN_LEN] {
    let mut s = [0u8; SOCKADDR_IN_LEN];
    s[0] = SOCKADDR_IN_LEN as u8;
    s[1] = AF_INET;
    s[4..8].copy_from_slice(&addr.octets());
    s
}

/// The SIOCAIFADDR request: name, address, no broadcast (left empty so the
/// kernel derives it, as ifconfig(8) does), mask, vhid 0.
pub fn encode_in_aliasreq(ifname: &IfName, addr: Ipv4Addr, prefix: u8) -> [u8; IN_ALIASREQ_LEN] {
    let mut r = [0u8; IN_ALIASREQ_LEN];
    put_name(&mut r[..IFNAMSIZ], ifname);
    r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&encode_sockaddr_in(addr));
    let mask = Ipv4Addr::from(prefix_mask(prefix));
    r[IFNAMSIZ + 32..IFNAMSIZ + 48].copy_from_slice(&encode_sockaddr_in(mask));
    r
}

/// The SIOCDIFADDR request: `struct ifreq` with the address in `ifr_addr`.
pub fn encode_ifreq_addr(ifname: &IfName, addr: Ipv4Addr) -> [u8; IFREQ_LEN] {
    let mut r = [0u8; IFREQ_LEN];
    put_name(&mut r[..IFNAMSIZ], ifname);
    r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&encode_sockaddr_in(addr));
    r
}

// ---------------------------------------------------------------------------
// pfctl(8)

/// Checks jnet's anchor root (`jnet`, or a nested `jnet/sub`): components
/// of letters, digits, '_' and '-', not starting with '_' (pf reserves
/// those), no wildcard.
pub fn check_anchor_root(root: &str) -> Result<(), PlanError> {
    let err = |reason| PlanError::Anchor {
        root: root.to_string(),
        reason,
    };
    if root.is_empty() || root.len() > 200 {
        return Err(err("must be 1 to 200 bytes"));
    }
    for part in root.split('/') {
        if part.is_empty() {
            return Err(err("empty path component"));
        }
        if part.starts_with('_') {
            return Err(err("components starting with '_' are reserved by pf"));
        }
        if !part
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            return Err(err("only letters, digits, '_', '-' and '/' are allowed"));
        }
    }
    Ok(())
}

/// The jail's anchor path `<root>/<jail>`. Checked as a whole (root and
/// jail component) against pfctl's refusal of `_`-prefixed components
/// (sbin/pfctl/pfctl.c main(), FreeBSD main e7646b05 l.2988-2990), so a
/// refused name fails here, before any pfctl call.
pub fn anchor_path(root: &str, jail: &JailName) -> Result<String, PlanError> {
    let path = format!("{root}/{jail}");
    check_anchor_root(root)?;
    check_anchor_root(&path)?;
    Ok(path)
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `pfctl -a <anchor> -n -f -`: parse the rules on stdin without loading.
pub fn pfctl_validate(anchor: &str) -> Vec<String> {
    args(&["-a", anchor, "-n", "-f", "-"])
}
/// `pfctl -a <anchor> -f -`: replace the anchor's rules with stdin.
pub fn pfctl_load(anchor: &str) -> Vec<String> {
    args(&["-a", anchor, "-f", "-"])
}
/// `pfctl -a <anchor> -F all`: empty the anchor (with an anchor given,
/// pfctl limits the flush to it and leaves global state alone).
pub fn pfctl_flush(anchor: &str) -> Vec<String> {
    args(&["-a", anchor, "-F", "all"])
}
/// `pfctl -P [-a <anchor>] -s nat|rules`. `-P` sets PF_OPT_NUMERIC so
/// ports print as numbers, not getservbyport() names (sbin/pfctl/pfctl.c
/// main() case 'P', FreeBSD main e7646b05 l.2799-2801; print_port() in
/// sbin/pfctl/pfctl_parser.c l.330-348). `-N` is "load only NAT rules"
/// (pfctl.c l.2766-2768), not numeric output.
pub fn pfctl_show(anchor: Option<&str>, what: &str) -> Vec<String> {
    match anchor {
        Some(a) => args(&["-P", "-a", a, "-s", what]),
        None => args(&["-P", "-s", what]),
    }
}
/// `pfctl -v -s Anchors`: every anchor, recursively.
pub fn pfctl_list_anchors() -> Vec<String> {
    args(&["-v", "-s", "Anchors"])
}

/// Anchor paths from `pfctl -vsA` (one per line, indented).
pub fn parse_anchor_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Anchors that do not belong to jnet's `root`.
pub fn foreign_anchors(all: &[String], root: &str) -> Vec<String> {
    let prefix = format!("{root}/");
    all.iter()
        .filter(|a| a.as_str() != root && !a.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Whether pfctl failed because `/dev/pf` does not exist, i.e. pf.ko is not
/// loaded: pfctl does `err(1, "/dev/pf")` when it cannot open the device
/// (sbin/pfctl/pfctl.c main(), FreeBSD main e7646b05 l.2881-2884), which
/// prints `pfctl: /dev/pf: No such file or directory`; the device is made
/// only by pf's module load (sys/netpfil/pf/pf_ioctl.c pf_load(),
/// `make_dev(&pf_cdevsw, 0, 0, 0, 0600, PF_NAME)`, l.6688) (F2).
pub fn is_pf_absent(stderr: &str) -> bool {
    stderr
        .lines()
        .any(|l| l.trim_end().ends_with("/dev/pf: No such file or directory"))
}

/// pfctl's complaint when listing an anchor that does not exist (FreeBSD:
/// DIOCGETRULES fails with EINVAL; newer pfctl names the anchor).
pub fn is_missing_anchor(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("anchor does not exist")
        || s.contains("no such file or directory") && s.contains("diocgetrule")
        || s.contains("invalid argument") && s.contains("diocgetrule")
}

/// The pf.conf hook lines that make pf evaluate jnet's per-jail anchors
/// and that the main ruleset's `pfctl -s nat` listing lacks: `nat-anchor`
/// and `rdr-anchor`. pfctl prints a hook back as `rdr-anchor "jnet/*" all`;
/// a hook with extra conditions still counts as present. The filter hook
/// `anchor "<root>/*"` is not required: jnet's anchors hold only nat and
/// `rdr pass` rules, which pf evaluates through the nat/rdr anchor calls
/// (sys/netpfil/pf/pf.c pf_get_translation() walks the PF_RULESET_NAT/RDR
/// rulesets, FreeBSD main e7646b05 l.3327-3360), and `rdr pass` skips the
/// filter ruleset altogether (F17).
pub fn missing_anchor_hooks(root: &str, main_nat: &str) -> Vec<String> {
    let wanted = format!("\"{root}/*\"");
    let has = |kind: &str| {
        main_nat.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(kind) && words.next() == Some(wanted.as_str())
        })
    };
    ["nat-anchor", "rdr-anchor"]
        .into_iter()
        .filter(|kind| !has(kind))
        .map(|kind| format!("{kind} {wanted}"))
        .collect()
}

/// The loaded rules of one anchor as one text (nat section, then filter
/// rules); `None` when both listings are empty.
pub fn combine_listings(nat: &str, rules: &str) -> Option<String> {
    let parts: Vec<&str> = [nat.trim_end(), rules.trim_end()]
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n") + "\n")
}

// ---------------------------------------------------------------------------
// Listener attribution

use crate::core::listeners::{Listener, Stack};

/// Merges the listeners `sockstat -j <jail>` reported into the host-wide
/// list: a row that is also in the host list is that socket seen from the
/// jail's side, so the host row gets the jail as owner; a row that is not
/// belongs to the jail's own (VNET) stack and is added as such.
///
/// why: sockstat has no jail column, so attribution comes from filtering.
/// The caller lists jails first and the host last: a socket opened between
/// the runs then shows up in the host stack without an owner (still
/// checked), never silently in the wrong stack.
///
/// A jail whose name is not a valid [`JailName`] (a jail jnet does not
/// manage) only gets its host rows attributed; see
/// [`attribute_running_jail_listeners`].
pub fn attribute_jail_listeners(host: &mut Vec<Listener>, jail: &JailName, rows: Vec<Listener>) {
    attribute_running_jail_listeners(host, jail.as_str(), rows);
}

/// [`attribute_jail_listeners`] for a jail known by its kernel name.
pub fn attribute_running_jail_listeners(host: &mut Vec<Listener>, jail: &str, rows: Vec<Listener>) {
    let own_stack = JailName::new(jail).ok();
    for row in rows {
        let same = |h: &Listener| {
            h.stack == Stack::Host
                && h.proto == row.proto
                && h.address == row.address
                && h.port == row.port
                && h.owner.pid == row.owner.pid
        };
        let mut found = false;
        for h in host.iter_mut().filter(|h| same(h)) {
            h.owner.jail = Some(jail.to_string());
            found = true;
        }
        if !found {
            let Some(name) = &own_stack else { continue };
            let mut r = row;
            r.stack = Stack::Jail(name.clone());
            r.owner.jail = Some(jail.to_string());
            host.push(r);
        }
    }
}

/// The major number of a FreeBSD release string (`14.1-RELEASE-p5` -> 14),
/// as freebsd-version(1) or `uname -r` print it.
pub fn release_major(release: &str) -> Option<u32> {
    let t = release.trim();
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let major = t[..end].parse().ok()?;
    t[end..].starts_with('.').then_some(major)
}

/// `sockstat` arguments: IPv4+IPv6 listening sockets, no header, numeric
/// users, wide address columns (FreeBSD 15 truncates without `-w`), tcp and
/// udp only; with a jail, only that jail's sockets (sockstat(1) `-j`).
/// `-P tcp,udp` because the default protocol list is sctp, tcp, udp and
/// divert (usr.bin/sockstat/sockstat.c `default_protos`, FreeBSD main
/// e7646b05 l.104), and SCTP's multi-address rows are the ones FreeBSD 15
/// prints as `??` continuation rows (F7); `-P` is in both getopt strings
/// (sockstat.c main(); freebsd-src f48c6390 usr.bin/sockstat/main.c
/// `"46AbCcfIij:Llnp:P:qSsUuvw"`).
///
/// `jail` is a jid or a name: sockstat's `-j` takes either (it resolves it
/// with jail_getid(3); usr.bin/sockstat/sockstat.c main() case 'j', FreeBSD
/// main e7646b05). jnet passes the jid of each running jail so jails whose
/// names jnet would not accept are attributed too (F13).
pub fn sockstat_args(jail: Option<&str>) -> Vec<String> {
    let mut v = args(&["-46lqnw", "-P", "tcp,udp"]);
    if let Some(j) = jail {
        v.push("-j".into());
        v.push(j.to_string());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::listeners::Owner;
    use crate::core::ports::Proto;

    fn jn(s: &str) -> JailName {
        JailName::new(s).unwrap()
    }
    fn ifn(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }
    fn spec(network: JailNetwork, params: &[(&str, &str)]) -> JailSpec {
        JailSpec {
            name: jn("www"),
            path: PathBuf::from("/usr/jails/www"),
            hostname: Some("www.example.org".into()),
            network,
            params: params.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }
    fn dedicated() -> JailNetwork {
        JailNetwork::Dedicated {
            address: Ipv4Addr::new(10, 0, 0, 5),
            prefix: 24,
            interface: ifn("vtnet0"),
            gateway: None,
        }
    }
    fn names(ps: &[Param]) -> Vec<&str> {
        ps.iter().map(Param::name).collect()
    }

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
        let ps = create_params(&spec(JailNetwork::Inherit, &[])).unwrap();
        assert_eq!(ip6(&ps), Some(JAIL_SYS_INHERIT.to_ne_bytes().to_vec()));
        let ps = create_params(&spec(JailNetwork::Inherit, &[("ip6", "disable")])).unwrap();
        assert_eq!(ip6(&ps), Some(0i32.to_ne_bytes().to_vec()));
        let ps = create_params(&spec(dedicated(), &[])).unwrap();
        assert_eq!(ip6(&ps), None);
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

    /// F2: pfctl's message when pf.ko is not loaded (pfctl.c err(1, "/dev/pf")).
    #[test]
    fn pf_absent_is_recognised() {
        assert!(is_pf_absent("pfctl: /dev/pf: No such file or directory\n"));
        assert!(!is_pf_absent("pfctl: /dev/pf: Permission denied\n"));
        assert!(!is_pf_absent("pfctl: DIOCGETRULES: No such file or directory\n"));
    }

    #[test]
    fn ioctl_numbers_match_sockio_h() {
        // Other values recorded in DESIGN.md, to check the encoder itself.
        assert_eq!(ioc_write(b'i', 16, 32), 0x8020_6910); // SIOCSIFFLAGS
        assert_eq!(ioc_write(b'i', 121, 32), 0x8020_6979); // SIOCIFDESTROY
        assert_eq!(ioc_write(b'i', 27, 136), 0x8088_691b); // SIOCAIFADDR_IN6
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
        let mut s = spec(JailNetwork::Inherit, &[]);
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
            let e = create_params(&spec(JailNetwork::Inherit, &pair));
            assert!(
                matches!(e, Err(PlanError::Param { ref reason, .. }) if reason == "given more than once"),
                "{e:?}"
            );
        }
        assert!(create_params(&spec(
            JailNetwork::Inherit,
            &[("securelevel", "1"), ("securelevel", "2")]
        ))
        .is_err());
    }

    #[test]
    fn bad_paths_and_hostnames() {
        let mut s = spec(JailNetwork::Inherit, &[]);
        s.path = PathBuf::from("jails/www");
        assert!(matches!(create_params(&s), Err(PlanError::Path { .. })));
        let mut s = spec(JailNetwork::Inherit, &[]);
        s.hostname = Some("a\0b".into());
        assert!(create_params(&s).is_err());
    }

    #[test]
    fn iovec_points_into_owned_buffers() {
        let ps = create_params(&spec(dedicated(), &[])).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = ps.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        let iov = JailIov::new(ps);
        // Moving the owner must not invalidate the pointers.
        let mut moved = Box::new(iov);
        let (_, n) = moved.as_mut_parts();
        assert_eq!(n as usize, 2 * (expected.len() + 1));
        let v = moved.iovecs();
        for (i, p) in moved.params().iter().enumerate() {
            assert_eq!(v[2 * i].iov_base as *const u8, p.name.as_ptr());
            assert_eq!(v[2 * i].iov_len, expected[i].0.len());
            assert_eq!(*expected[i].0.last().unwrap(), 0, "names are NUL-terminated");
            if p.value.is_empty() {
                assert!(v[2 * i + 1].iov_base.is_null());
                assert_eq!(v[2 * i + 1].iov_len, 0);
            } else {
                assert_eq!(v[2 * i + 1].iov_base as *const u8, p.value.as_ptr());
                assert_eq!(v[2 * i + 1].iov_len, expected[i].1.len());
            }
        }
        let last = v.len() - 2;
        assert_eq!(v[last].iov_base as *const u8, ERRMSG_NAME.as_ptr());
        assert_eq!(v[last + 1].iov_base as *const u8, moved.errmsg.as_ptr());
        assert_eq!(v[last + 1].iov_len, JAIL_ERRMSGLEN);
        assert_eq!(moved.errmsg(), None);
    }

    #[test]
    fn jail_get_result_decoding() {
        let mut iov = JailIov::get_next(0, 4);
        assert_eq!(names(iov.params()), ["lastjid", "jid", "name", "path", "ip4.addr"]);
        assert_eq!(iov.iovecs()[9].iov_len, 16);
        assert!(iov.set_value_out("name", b"www\0"));
        assert!(iov.set_value_out("path", b"/usr/jails/www\0"));
        assert!(iov.set_value_out("ip4.addr", &[10, 0, 0, 5, 192, 168, 1, 9]));
        assert!(!iov.set_value_out("ip4.addr", &[0; 17]), "larger than the buffer");
        let j = iov.decode_jail(3);
        assert_eq!(j.jid, 3);
        assert_eq!(j.name, "www");
        assert_eq!(j.path, PathBuf::from("/usr/jails/www"));
        assert_eq!(j.ip4, [Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(192, 168, 1, 9)]);
        // A jail without addresses: the kernel writes length 0.
        let mut iov = JailIov::get_next(3, 4);
        iov.set_value_out("ip4.addr", &[]);
        assert!(iov.decode_jail(4).ip4.is_empty());
    }

    #[test]
    fn errmsg_decoding() {
        let mut buf = vec![0u8; JAIL_ERRMSGLEN];
        assert_eq!(decode_errmsg(&buf), None);
        buf[..22].copy_from_slice(b"jail \"www\" not found\n\0");
        assert_eq!(decode_errmsg(&buf).as_deref(), Some("jail \"www\" not found"));
        // No NUL at all: the whole buffer.
        assert_eq!(decode_errmsg(b"abc").as_deref(), Some("abc"));
        assert_eq!(decode_errmsg(b"  \0junk").as_deref(), None);
        assert_eq!(decode_in_addrs(&[1, 2, 3, 4, 5]), [Ipv4Addr::new(1, 2, 3, 4)]);
    }

    fn ifa(i: &str, a: &str, p: u8) -> IfAddr {
        IfAddr {
            interface: i.into(),
            address: a.parse().unwrap(),
            prefix: p,
        }
    }

    #[test]
    fn alias_mask_choice() {
        let existing = [
            ifa("vtnet0", "192.168.1.10", 24),
            ifa("vtnet0", "fe80::1", 64),
            ifa("lo1", "10.66.0.1", 32),
            ifa("lo0", "127.0.0.1", 8),
        ];
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        // Inside the subnet of vtnet0: /32.
        assert_eq!(
            plan_alias(a("192.168.1.50"), 24, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Add { prefix: 32 })
        );
        // Outside any subnet on vtnet0: the requested prefix.
        assert_eq!(
            plan_alias(a("10.0.0.5"), 24, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Add { prefix: 24 })
        );
        // A /32 on lo1 is no subnet: the pool's prefix stays.
        assert_eq!(
            plan_alias(a("10.66.0.2"), 24, &ifn("lo1"), &existing),
            Ok(AliasPlan::Add { prefix: 24 })
        );
        // The same subnet on another interface does not count.
        assert_eq!(
            plan_alias(a("192.168.1.50"), 24, &ifn("lo1"), &existing),
            Ok(AliasPlan::Add { prefix: 24 })
        );
        // Already there: nothing to do; elsewhere: refused.
        assert_eq!(
            plan_alias(a("192.168.1.10"), 24, &ifn("vtnet0"), &existing),
            Ok(AliasPlan::Present)
        );
        assert!(matches!(
            plan_alias(a("127.0.0.1"), 32, &ifn("lo1"), &existing),
            Err(PlanError::Alias { .. })
        ));
        assert!(plan_alias(a("10.0.0.5"), 0, &ifn("lo1"), &existing).is_err());
        assert!(plan_alias(a("10.0.0.5"), 33, &ifn("lo1"), &existing).is_err());
        assert!(plan_alias(a("224.0.0.1"), 32, &ifn("lo1"), &existing).is_err());
        assert!(alias_present(a("10.66.0.1"), &ifn("lo1"), &existing));
        assert!(!alias_present(a("10.66.0.1"), &ifn("vtnet0"), &existing));
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_mask(24), 0xffff_ff00);
        assert_eq!(prefix_mask(32), u32::MAX);
        assert_eq!(prefix_mask(1), 0x8000_0000);
        assert_eq!(mask_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(mask_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_prefix("255.0.255.0".parse().unwrap()), None);
        assert_eq!(mask_prefix("ffff:ffff:ffff:ffff::".parse().unwrap()), Some(64));
    }

    #[test]
    fn aliasreq_layout() {
        let r = encode_in_aliasreq(&ifn("vtnet0"), Ipv4Addr::new(10, 0, 0, 5), 32);
        assert_eq!(&r[..7], b"vtnet0\0");
        assert!(r[6..16].iter().all(|&b| b == 0));
        // ifra_addr at 16
        assert_eq!(&r[16..24], &[16, AF_INET, 0, 0, 10, 0, 0, 5]);
        // ifra_broadaddr at 32 left empty
        assert!(r[32..48].iter().all(|&b| b == 0));
        // ifra_mask at 48
        assert_eq!(&r[48..56], &[16, AF_INET, 0, 0, 255, 255, 255, 255]);
        // ifra_vhid at 64
        assert_eq!(&r[64..], &[0, 0, 0, 0]);
        let r = encode_in_aliasreq(&ifn("lo1"), Ipv4Addr::new(10, 66, 0, 2), 24);
        assert_eq!(&r[52..56], &[255, 255, 255, 0]);
        let d = encode_ifreq_addr(&ifn("lo1"), Ipv4Addr::new(10, 66, 0, 2));
        assert_eq!(&d[..4], b"lo1\0");
        assert_eq!(&d[16..24], &[16, AF_INET, 0, 0, 10, 66, 0, 2]);
        assert!(d[24..].iter().all(|&b| b == 0));
    }

    #[test]
    fn anchor_hooks() {
        let nat = "nat-anchor \"jnet/*\" all\nrdr-anchor \"relayd/*\" all\n";
        let rules = "anchor \"jnet/*\" on em0 all\nanchor \"relayd/*\" all\n";
        assert!(rules.contains("anchor \"jnet/*\""));
        assert_eq!(missing_anchor_hooks("jnet", nat), ["rdr-anchor \"jnet/*\""]);
        assert_eq!(
            missing_anchor_hooks("jnet", "nat-anchor \"jnetx/*\" all\n"),
            ["nat-anchor \"jnet/*\"", "rdr-anchor \"jnet/*\""]
        );
        // F17: without a filter `anchor "jnet/*"` nothing is reported missing.
        let all = "nat-anchor \"jnet/*\" all\nrdr-anchor \"jnet/*\" all\n";
        assert!(missing_anchor_hooks("jnet", all).is_empty());
        // A hook for one jail only is not the wildcard hook.
        assert_eq!(
            missing_anchor_hooks("jnet", "nat-anchor \"jnet/www\" all\nrdr-anchor \"jnet/*\" all").len(),
            1
        );
    }

    /// Real `pfctl -s rules` / `-s nat` output from the shared corpus.
    fn corpus_file(rel: &str) -> Option<String> {
        let dir = std::env::var("JNET_CORPUS")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus").to_string());
        let path = std::path::Path::new(&dir).join(rel);
        match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "corpus missing under CI: {}",
                    path.display()
                );
                eprintln!(
                    "SKIP: corpus file {} not readable ({e}); set JNET_CORPUS",
                    path.display()
                );
                None
            }
        }
    }

    #[test]
    fn anchor_hooks_in_real_listings() {
        let Some(nat) = corpus_file("cmdout/pfctl-sn__pfsense-nat-anchors__miniupnp-issue451.txt") else {
            return;
        };
        // The capture hooks relayd/* as a filter anchor only (in -s rules,
        // which is no longer consulted: F17).
        assert_eq!(
            missing_anchor_hooks("relayd", &nat),
            ["nat-anchor \"relayd/*\"", "rdr-anchor \"relayd/*\""]
        );
        assert_eq!(missing_anchor_hooks("jnet", &nat).len(), 2);
        // `nat-anchor "natrules/"` (no wildcard) does not hook natrules/*.
        assert!(missing_anchor_hooks("natrules", &nat).contains(&"nat-anchor \"natrules/*\"".to_string()));
    }

    #[test]
    fn pfctl_arguments() {
        let a = anchor_path("jnet", &jn("www")).unwrap();
        assert_eq!(a, "jnet/www");
        assert_eq!(pfctl_validate(&a), ["-a", "jnet/www", "-n", "-f", "-"]);
        assert_eq!(pfctl_load(&a), ["-a", "jnet/www", "-f", "-"]);
        assert_eq!(pfctl_flush(&a), ["-a", "jnet/www", "-F", "all"]);
        assert_eq!(pfctl_show(Some(&a), "nat"), ["-P", "-a", "jnet/www", "-s", "nat"]);
        assert_eq!(pfctl_show(None, "rules"), ["-P", "-s", "rules"]);
        assert_eq!(pfctl_list_anchors(), ["-v", "-s", "Anchors"]);
        assert_eq!(anchor_path("site/jnet", &jn("db")).unwrap(), "site/jnet/db");
        for bad in ["", "*", "jnet/*", "_jnet", "a//b", "/a", "a b", "jnet;x", "jnet\n"] {
            assert!(check_anchor_root(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn anchor_listing() {
        let all = parse_anchor_list("  jnet\n  jnet/db\n  jnet/www\n  jnetx\n  miniupnpd\n\n  bastille/web\n");
        assert_eq!(
            all,
            ["jnet", "jnet/db", "jnet/www", "jnetx", "miniupnpd", "bastille/web"]
        );
        assert_eq!(foreign_anchors(&all, "jnet"), ["jnetx", "miniupnpd", "bastille/web"]);
        assert!(is_missing_anchor("pfctl: DIOCGETRULES: Invalid argument\n"));
        assert!(is_missing_anchor("pfctl: Anchor does not exist.\n"));
        assert!(!is_missing_anchor("pfctl: /dev/pf: Permission denied"));
        assert_eq!(combine_listings("", "\n"), None);
        assert_eq!(
            combine_listings(
                "rdr pass on em0 inet proto tcp from any to any port = 80 -> 10.0.0.5\n",
                ""
            )
            .as_deref(),
            Some("rdr pass on em0 inet proto tcp from any to any port = 80 -> 10.0.0.5\n")
        );
        assert_eq!(combine_listings("a\n", "b\n").as_deref(), Some("a\nb\n"));
    }

    fn lst(addr: &str, port: u16, pid: u32) -> Listener {
        Listener {
            proto: Proto::Tcp,
            address: addr.parse().unwrap(),
            port,
            dual_stack: false,
            stack: Stack::Host,
            owner: Owner {
                pid: Some(pid),
                command: Some("nginx".into()),
                jail: None,
                inode: None,
            },
        }
    }

    #[test]
    fn release_majors() {
        assert_eq!(release_major("14.1-RELEASE-p5\n"), Some(14));
        assert_eq!(release_major("15.0-CURRENT"), Some(15));
        assert_eq!(release_major("13.2-STABLE"), Some(13));
        assert_eq!(release_major("RELEASE"), None);
        assert_eq!(release_major("14"), None);
        assert_eq!(release_major(""), None);
    }

    #[test]
    fn jail_attribution() {
        let mut host = vec![lst("0.0.0.0", 22, 10), lst("10.0.0.5", 80, 20)];
        let www = jn("www");
        attribute_jail_listeners(&mut host, &www, vec![lst("10.0.0.5", 80, 20), lst("0.0.0.0", 8080, 30)]);
        assert_eq!(host[0].owner.jail, None);
        assert_eq!(host[1].owner.jail.as_deref(), Some("www"));
        assert_eq!(host[1].stack, Stack::Host);
        // Not in the host list: the jail's own (VNET) stack.
        assert_eq!(host.len(), 3);
        assert_eq!(host[2].stack, Stack::Jail(www.clone()));
        assert_eq!(
            sockstat_args(Some(www.as_str())),
            ["-46lqnw", "-P", "tcp,udp", "-j", "www"]
        );
        assert_eq!(sockstat_args(Some("12")), ["-46lqnw", "-P", "tcp,udp", "-j", "12"]);
        assert_eq!(sockstat_args(None), ["-46lqnw", "-P", "tcp,udp"]);
    }

    /// F13: a running jail jnet does not manage (name `web.sub`, not a
    /// JailName) still owns its host-stack sockets; rows outside the host
    /// list are dropped rather than given a stack jnet cannot name.
    #[test]
    fn running_jail_attribution_by_kernel_name() {
        let mut host = vec![lst("10.0.0.7", 443, 40)];
        attribute_running_jail_listeners(
            &mut host,
            "web.sub",
            vec![lst("10.0.0.7", 443, 40), lst("0.0.0.0", 1, 41)],
        );
        assert_eq!(host.len(), 1);
        assert_eq!(host[0].owner.jail.as_deref(), Some("web.sub"));
        assert_eq!(host[0].stack, Stack::Host);
    }
}
