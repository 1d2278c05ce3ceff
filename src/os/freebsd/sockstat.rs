//! sockstat(1) argument lists, the userland release major that selects its
//! layout, and the attribution of per-jail (`sockstat -j`) rows to the
//! host-wide listing.
//!
//! Pure: `listeners` runs sockstat; its text is parsed by
//! `core::listeners::parse_sockstat`, not here.

use super::args;
use crate::core::listeners::{Listener, Stack};
use crate::core::names::JailName;

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
    use crate::os::freebsd::test_support::jn;

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
