//! The lifecycle planner (pure): from what a jail should be ([`Desired`])
//! and what the host shows ([`Observed`]) it computes the ordered steps of a
//! start or a stop ([`Plan`]), each with its undo.
//!
//! Step order is jail(8)'s: usr.sbin/jail/jail.c `startcommands` and
//! `stopcommands` (FreeBSD main 2022-07 e7646b05, jail.c:88-132):
//!
//! - start: exec.prepare (90), addresses (92, `IP__IP4_IFADDR`), mounts
//!   (97-101: mount, mount.fstab, mount.devfs, mount.fdescfs,
//!   mount.procfs; refused on Linux, see `engine::jails_conf`),
//!   exec.prestart (102) *before* the jail exists, create (103),
//!   exec.created (104), exec.start inside (106), exec.poststart (108);
//! - stop: exec.prestop (114), exec.stop inside (115), SIGTERM and wait
//!   `stop.timeout` (116, command.c `term_procs`, default 10 s), remove
//!   (117), exec.poststop (118) while the addresses are still there, the
//!   mounts in reverse (119-123), address removal (128), exec.release (130).
//!
//! jnet adds two steps of its own around that order: the pre-start port
//! check comes first (a veto before anything runs), the firewall load comes
//! last (after exec.poststart, once the jail is up) and its flush right
//! after the jail is removed. Steps whose effect is already in place are
//! left out, so a plan for a running jail is empty ("already running").
//!
//! This module does no I/O: applying a plan is `engine::lifecycle`'s job.

use std::fmt;

use crate::core::model::{ExecOptions, JailNetwork, JailSpec, MountEntry};
use crate::core::names::JailName;

/// The jail.conf(5) `exec.*` command lists of one jail, the exec.* settings
/// they run with, and jail(8)'s mounts around them. Host hooks run with
/// `/bin/sh -c`; `start`/`stop` run the same way inside the jail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecHooks {
    pub prepare: Vec<String>,
    pub prestart: Vec<String>,
    pub created: Vec<String>,
    pub start: Vec<String>,
    pub poststart: Vec<String>,
    pub prestop: Vec<String>,
    pub stop: Vec<String>,
    pub poststop: Vec<String>,
    pub release: Vec<String>,
    /// exec.clean, exec.jail_user, exec.timeout, ... (see `os::exec`).
    pub options: ExecOptions,
    /// mount, mount.fstab lines, mount.devfs, mount.fdescfs, mount.procfs,
    /// in jail(8)'s mount order (unmounted in reverse).
    pub mounts: Vec<MountEntry>,
}

/// What a jail should look like when running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub spec: JailSpec,
    pub exec: ExecHooks,
    /// The jail's rendered firewall rules for this platform; None when the
    /// jail has no exposures and no nat.
    pub rules: Option<String>,
    /// Whether the pre-start port check runs.
    pub port_check: bool,
    /// pf anchor root / nft table name.
    pub anchor_root: String,
    /// jail.conf `stop.timeout`: how long a stop waits after SIGTERM before
    /// the removal kills what is left (jail(8) default 10 s, command.c:57).
    pub stop_timeout: std::time::Duration,
    /// jail.conf parameters jail(8) would act on that jnet cannot honour,
    /// with their `file:line`; a start is refused while any is set.
    pub unsupported: Vec<(String, String)>,
    /// jail.conf sets `persist`: the jail outlives its last process. jail(8)
    /// otherwise clears it after exec.poststart (jail.c:714-717, 726-747).
    pub persist: bool,
}

/// jail(8)'s default `stop.timeout` (usr.sbin/jail/command.c:57,
/// `DEFAULT_STOP_TIMEOUT`).
pub const DEFAULT_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Desired {
    pub fn jail(&self) -> &JailName {
        &self.spec.name
    }
}

/// The firewall side of a jail as the host shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesState {
    Absent,
    /// Loaded; `matches` tells whether they are the rules jnet would load.
    Loaded {
        matches: bool,
    },
}

/// What the host shows about one jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The jail itself exists (jail_get finds it; on Linux its record).
    pub jail_running: bool,
    /// Its address is in place (alias / namespace with the address).
    /// Always true for inherit jails: they have nothing to attach.
    pub network_attached: bool,
    pub rules: RulesState,
}

impl Observed {
    /// Nothing of the jail exists on the host.
    pub const NOTHING: Observed = Observed {
        jail_running: false,
        network_attached: false,
        rules: RulesState::Absent,
    };
}

/// Which jail.conf exec list a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Prepare,
    Prestart,
    Created,
    Start,
    Poststart,
    Prestop,
    Stop,
    Poststop,
    Release,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prepare => "exec.prepare",
            Hook::Prestart => "exec.prestart",
            Hook::Created => "exec.created",
            Hook::Start => "exec.start",
            Hook::Poststart => "exec.poststart",
            Hook::Prestop => "exec.prestop",
            Hook::Stop => "exec.stop",
            Hook::Poststop => "exec.poststop",
            Hook::Release => "exec.release",
        }
    }
}

/// One thing the engine asks the host to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CheckPorts,
    AttachNetwork,
    DetachNetwork,
    CreateJail,
    /// SIGTERM to every process of the jail, then wait up to
    /// `Desired::stop_timeout` for them to exit (jail(8) `term_procs`).
    TerminateJail,
    RemoveJail,
    /// One jail.conf mount (mount(8) on the host, before the jail exists).
    Mount(MountEntry),
    /// Its umount(8), after the jail is gone.
    Unmount(MountEntry),
    /// A jail.conf command run on the host (`/bin/sh -c`).
    ExecHost {
        hook: Hook,
        command: String,
    },
    /// A jail.conf command run inside the jail (`/bin/sh -c`).
    ExecJail {
        hook: Hook,
        command: String,
    },
    LoadRules,
    FlushRules,
}

impl Action {
    /// Short name used in messages ("step <kind> failed").
    pub fn kind(&self) -> &'static str {
        match self {
            Action::CheckPorts => "port check",
            Action::AttachNetwork => "address",
            Action::DetachNetwork => "address removal",
            Action::CreateJail => "create jail",
            Action::TerminateJail => "stop.timeout",
            Action::RemoveJail => "remove jail",
            Action::Mount(_) => "mount",
            Action::Unmount(_) => "unmount",
            Action::ExecHost { hook, .. } | Action::ExecJail { hook, .. } => hook.as_str(),
            Action::LoadRules => "firewall load",
            Action::FlushRules => "firewall flush",
        }
    }

    /// What undoes this action, when anything must.
    pub fn undo(&self) -> Option<Action> {
        match self {
            Action::AttachNetwork => Some(Action::DetachNetwork),
            Action::CreateJail => Some(Action::RemoveJail),
            Action::LoadRules => Some(Action::FlushRules),
            Action::Mount(m) => Some(Action::Unmount(m.clone())),
            // why: a check changes nothing; commands cannot be un-run (the
            // jail's removal ends whatever exec.start left running).
            _ => None,
        }
    }

    /// A one-line human description, for `jnet plan`.
    pub fn describe(&self, d: &Desired) -> String {
        let jail = d.jail();
        match self {
            Action::CheckPorts => format!("check that the ports of {jail} are free"),
            Action::AttachNetwork => match d.spec.network.has_own() {
                false => format!("{jail} shares the host's addresses (nothing to attach)"),
                true => format!(
                    "attach {}",
                    addresses_phrase(&d.spec.network, &format!("for {jail}"), "on")
                ),
            },
            Action::DetachNetwork => match d.spec.network.has_own() {
                false => format!("{jail} shares the host's addresses (nothing to detach)"),
                true => format!(
                    "detach {}",
                    addresses_phrase(&d.spec.network, &format!("of {jail}"), "from")
                ),
            },
            Action::CreateJail => format!("create jail {jail} (path {})", d.spec.path.display()),
            Action::TerminateJail => format!(
                "send SIGTERM to the processes of {jail} and wait up to {} s (stop.timeout)",
                d.stop_timeout.as_secs()
            ),
            Action::RemoveJail => format!("remove jail {jail} and end its processes"),
            Action::Mount(m) => format!("mount {} on {} ({})", m.vfstype, m.file.display(), m.source),
            Action::Unmount(m) => format!("unmount {} from {} ({})", m.vfstype, m.file.display(), m.source),
            Action::ExecHost { hook, command } => {
                format!("run {} on the host: {command}", hook.as_str())
            }
            Action::ExecJail { hook, command } => {
                format!("run {} inside {jail}: {command}", hook.as_str())
            }
            Action::LoadRules => format!("load firewall rules {}/{jail}", d.anchor_root),
            Action::FlushRules => format!("flush firewall rules {}/{jail}", d.anchor_root),
        }
    }
}

/// One step of a plan and how to take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    pub undo: Option<Action>,
}

impl Step {
    fn new(action: Action) -> Step {
        let undo = action.undo();
        Step { action, undo }
    }
}

/// Which verb a plan serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Start,
    Stop,
}

/// An ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub verb: Verb,
    pub steps: Vec<Step>,
    /// For a start: how to take down pieces found already in place (a
    /// half-done earlier start), in undo order. A failed start runs these
    /// after undoing its own steps, so it leaves nothing behind.
    pub adopted: Vec<Action>,
    /// The jail was running when planned: a failed step must leave it up
    /// (H10), not mark it stopped.
    pub on_running: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The plan as numbered lines, for `jnet plan` and golden tests.
    pub fn render(&self, d: &Desired) -> String {
        if self.steps.is_empty() {
            return match self.verb {
                Verb::Start => format!("{}: already running; nothing to do\n", d.jail()),
                Verb::Stop => format!("{}: already stopped; nothing to do\n", d.jail()),
            };
        }
        let mut out = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("{}. {}", i + 1, s.action.describe(d)));
            if let Some(u) = &s.undo {
                out.push_str(&format!("  [undo: {}]", u.describe(d)));
            }
            out.push('\n');
        }
        out
    }

    /// Keeps only the steps whose action `keep` accepts (used by the
    /// jail(8) hooks, each doing one part of the plan).
    pub fn retain(mut self, keep: impl Fn(&Action) -> bool) -> Plan {
        self.steps.retain(|s| keep(&s.action));
        self
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
        })
    }
}

/// `10.0.0.5/24 for www on jnbr0`, `10.0.0.5/24, fd00::5/64 for www on
/// jnbr0`, or with different interfaces `10.0.0.5/24 on a, fd00::5/64 on b
/// for www`.
fn addresses_phrase(net: &JailNetwork, jail: &str, on: &str) -> String {
    let own = net.own_addresses();
    let addrs: Vec<String> = own.iter().map(|(a, p, _)| format!("{a}/{p}")).collect();
    match own.first() {
        Some((_, _, first)) if own.iter().all(|(_, _, i)| i == first) => {
            format!("{} {jail} {on} {first}", addrs.join(", "))
        }
        _ => {
            let each: Vec<String> = own.iter().map(|(a, p, i)| format!("{a}/{p} {on} {i}")).collect();
            format!("{} {jail}", each.join(", "))
        }
    }
}

fn has_network(d: &Desired) -> bool {
    d.spec.network.has_own()
}

/// The steps that bring the jail from `o` to running.
pub fn plan_start(d: &Desired, o: &Observed) -> Plan {
    let mut steps = Vec::new();
    let mut adopted = Vec::new();
    let need_net = has_network(d) && !o.network_attached;
    let need_jail = !o.jail_running;
    // why: the check only matters before the jail binds anything; a running
    // jail's own listeners would otherwise look like conflicts.
    if need_jail && d.port_check {
        steps.push(Step::new(Action::CheckPorts));
    }
    if need_jail {
        exec_steps(&mut steps, Hook::Prepare, &d.exec.prepare);
    }
    if need_net {
        steps.push(Step::new(Action::AttachNetwork));
    }
    if need_jail {
        // why: jail(8) mounts after the addresses and before exec.prestart
        // (jail.c startcommands, 97-101), in jail.conf's order.
        for m in &d.exec.mounts {
            steps.push(Step::new(Action::Mount(m.clone())));
        }
        // why: jail(8) runs exec.prestart before the jail exists (jail.c:102
        // vs 103; jail.8 "before a jail is created"), so hooks that prepare
        // the root (mounts, ZFS, copies) see no running jail yet.
        exec_steps(&mut steps, Hook::Prestart, &d.exec.prestart);
        steps.push(Step::new(Action::CreateJail));
        exec_steps(&mut steps, Hook::Created, &d.exec.created);
        exec_steps(&mut steps, Hook::Start, &d.exec.start);
        exec_steps(&mut steps, Hook::Poststart, &d.exec.poststart);
    }
    match (&d.rules, o.rules) {
        (Some(_), RulesState::Absent) | (Some(_), RulesState::Loaded { matches: false }) => {
            steps.push(Step::new(Action::LoadRules))
        }
        // Rules loaded but the jail should have none: a stale anchor.
        (None, RulesState::Loaded { .. }) => steps.push(Step::new(Action::FlushRules)),
        _ => {}
    }
    // Pieces already there, taken down (in stop order) if this start fails.
    if o.rules != RulesState::Absent && d.rules.is_some() {
        adopted.push(Action::FlushRules);
    }
    if o.jail_running {
        adopted.push(Action::RemoveJail);
    }
    if has_network(d) && o.network_attached {
        adopted.push(Action::DetachNetwork);
    }
    // why: a running jail is not a half-done start. If reloading its rules
    // fails, taking the jail down would turn a failed reload into an outage
    // (H10): the jail stays up and the error is reported.
    if steps.is_empty() || o.jail_running {
        adopted.clear();
    }
    Plan {
        verb: Verb::Start,
        steps,
        adopted,
        on_running: o.jail_running,
    }
}

/// One step per command of a jail.conf `exec.*` list: exec.start and
/// exec.stop run inside the jail, the other hooks on the host (jail(8)).
fn exec_steps(steps: &mut Vec<Step>, hook: Hook, commands: &[String]) {
    for c in commands {
        let command = c.clone();
        steps.push(Step::new(match hook {
            Hook::Start | Hook::Stop => Action::ExecJail { hook, command },
            _ => Action::ExecHost { hook, command },
        }));
    }
}

/// The steps that take the jail from `o` down to nothing.
pub fn plan_stop(d: &Desired, o: &Observed) -> Plan {
    let mut steps = Vec::new();
    if o.jail_running {
        exec_steps(&mut steps, Hook::Prestop, &d.exec.prestop);
        exec_steps(&mut steps, Hook::Stop, &d.exec.stop);
        // why: jail(8) gives the jail's daemons SIGTERM and stop.timeout to
        // shut down (jail.c:116) before jail_remove SIGKILLs the rest
        // (kern_jail.c:3066-3077).
        steps.push(Step::new(Action::TerminateJail));
        steps.push(Step::new(Action::RemoveJail));
    }
    if o.rules != RulesState::Absent {
        steps.push(Step::new(Action::FlushRules));
    }
    if o.jail_running {
        // why: exec.poststop runs while the addresses are still in place
        // (jail.c:118 vs 128).
        exec_steps(&mut steps, Hook::Poststop, &d.exec.poststop);
        // why: jail(8) unmounts after exec.poststop, in reverse (jail.c
        // stopcommands 119-123; mount and mount.fstab are PF_REV lists).
        for m in d.exec.mounts.iter().rev() {
            steps.push(Step::new(Action::Unmount(m.clone())));
        }
    }
    if has_network(d) && o.network_attached {
        steps.push(Step::new(Action::DetachNetwork));
    }
    if o.jail_running {
        exec_steps(&mut steps, Hook::Release, &d.exec.release);
    }
    // why: a stop is not undone (re-creating what the user asked to remove
    // would be surprising); the engine presses on and reports failures.
    for s in &mut steps {
        s.undo = None;
    }
    Plan {
        verb: Verb::Stop,
        steps,
        adopted: vec![],
        on_running: o.jail_running,
    }
}

/// Whether a firewall listing shows the same rules as a rendered text of
/// this platform's syntax (see `core::rules::drift`). A false "differs"
/// only costs an (atomic) reload.
pub fn rules_match(rendered: &str, listing: &str) -> bool {
    use crate::core::rules::drift::{compare, State, Syntax};
    matches!(
        compare(Syntax::native(), Some(rendered), Some(listing)),
        State::InSync | State::Empty
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::IfName;
    use std::path::PathBuf;

    fn desired(net: JailNetwork, rules: Option<&str>) -> Desired {
        Desired {
            spec: JailSpec {
                name: JailName::new("www").unwrap(),
                path: PathBuf::from("/jails/www"),
                hostname: Some("www.example.org".into()),
                network: net,
                params: vec![],
            },
            exec: ExecHooks {
                prestart: vec!["logger starting www".into()],
                start: vec!["/bin/sh /etc/rc".into()],
                poststart: vec![],
                prestop: vec![],
                stop: vec!["/bin/sh /etc/rc.shutdown".into()],
                poststop: vec!["logger stopped www".into()],
                ..Default::default()
            },
            rules: rules.map(str::to_string),
            port_check: true,
            anchor_root: "jnet".into(),
            stop_timeout: crate::core::plan::DEFAULT_STOP_TIMEOUT,
            unsupported: vec![],
            persist: false,
        }
    }

    fn dedicated() -> JailNetwork {
        JailNetwork::inet_only(crate::core::model::OwnAddress {
            address: "10.0.0.5".parse().unwrap(),
            prefix: 24,
            interface: IfName::new("jnbr0").unwrap(),
            gateway: Some("10.0.0.1".parse().unwrap()),
        })
    }

    const RULES: &str = "rdr pass on em0 inet proto tcp from any to (em0) port 80 -> 10.0.0.5 port 80\n";

    #[test]
    fn fresh_start_dedicated() {
        let d = desired(dedicated(), Some(RULES));
        let p = plan_start(&d, &Observed::NOTHING);
        assert_eq!(
            p.render(&d),
            "1. check that the ports of www are free\n\
             2. attach 10.0.0.5/24 for www on jnbr0  [undo: detach 10.0.0.5/24 of www from jnbr0]\n\
             3. run exec.prestart on the host: logger starting www\n\
             4. create jail www (path /jails/www)  [undo: remove jail www and end its processes]\n\
             5. run exec.start inside www: /bin/sh /etc/rc\n\
             6. load firewall rules jnet/www  [undo: flush firewall rules jnet/www]\n"
        );
        assert!(p.adopted.is_empty());
    }

    #[test]
    fn dual_stack_attach_names_both_addresses() {
        let mut net = dedicated();
        net.inet6 = crate::core::model::FamilyNetwork::Own(crate::core::model::OwnAddress {
            address: "fd00::5".parse().unwrap(),
            prefix: 64,
            interface: IfName::new("jnbr0").unwrap(),
            gateway: None,
        });
        let d = desired(net.clone(), None);
        assert_eq!(
            Action::AttachNetwork.describe(&d),
            "attach 10.0.0.5/24, fd00::5/64 for www on jnbr0"
        );
        if let crate::core::model::FamilyNetwork::Own(o) = &mut net.inet6 {
            o.interface = IfName::new("jnbr6").unwrap();
        }
        let d = desired(net, None);
        assert_eq!(
            Action::DetachNetwork.describe(&d),
            "detach 10.0.0.5/24 from jnbr0, fd00::5/64 from jnbr6 of www"
        );
    }

    #[test]
    fn fresh_start_inherit_has_no_address_step() {
        let d = desired(JailNetwork::INHERIT, None);
        // Inherit jails have nothing to attach: observed as attached.
        let o = Observed {
            network_attached: true,
            ..Observed::NOTHING
        };
        let p = plan_start(&d, &o);
        assert_eq!(
            p.render(&d),
            "1. check that the ports of www are free\n\
             2. run exec.prestart on the host: logger starting www\n\
             3. create jail www (path /jails/www)  [undo: remove jail www and end its processes]\n\
             4. run exec.start inside www: /bin/sh /etc/rc\n"
        );
        // Even observed as not attached, inherit never plans an address.
        assert_eq!(plan_start(&d, &Observed::NOTHING), p);
    }

    #[test]
    fn already_running_is_empty() {
        let d = desired(dedicated(), Some(RULES));
        let o = Observed {
            jail_running: true,
            network_attached: true,
            rules: RulesState::Loaded { matches: true },
        };
        let p = plan_start(&d, &o);
        assert!(p.is_empty() && p.adopted.is_empty());
        assert_eq!(p.render(&d), "www: already running; nothing to do\n");
    }

    #[test]
    fn partially_started_alias_present_anchor_missing() {
        let d = desired(dedicated(), Some(RULES));
        // Address attached and anchor missing, jail not created.
        let o = Observed {
            jail_running: false,
            network_attached: true,
            rules: RulesState::Absent,
        };
        let p = plan_start(&d, &o);
        assert_eq!(
            p.render(&d),
            "1. check that the ports of www are free\n\
             2. run exec.prestart on the host: logger starting www\n\
             3. create jail www (path /jails/www)  [undo: remove jail www and end its processes]\n\
             4. run exec.start inside www: /bin/sh /etc/rc\n\
             5. load firewall rules jnet/www  [undo: flush firewall rules jnet/www]\n"
        );
        assert_eq!(p.adopted, vec![Action::DetachNetwork]);
        // Jail and address up, only the anchor missing: one step.
        let o = Observed {
            jail_running: true,
            network_attached: true,
            rules: RulesState::Absent,
        };
        let p = plan_start(&d, &o);
        assert_eq!(
            p.render(&d),
            "1. load firewall rules jnet/www  [undo: flush firewall rules jnet/www]\n"
        );
        // H10: a failed reload of a running jail must not tear it down.
        assert!(p.adopted.is_empty(), "{:?}", p.adopted);
    }

    #[test]
    fn drifted_or_stale_rules() {
        let d = desired(dedicated(), Some(RULES));
        let o = Observed {
            jail_running: true,
            network_attached: true,
            rules: RulesState::Loaded { matches: false },
        };
        assert_eq!(plan_start(&d, &o).steps, vec![Step::new(Action::LoadRules)]);
        let d = desired(dedicated(), None);
        let p = plan_start(&d, &o);
        assert_eq!(p.render(&d), "1. flush firewall rules jnet/www\n");
    }

    #[test]
    fn stop_of_running() {
        let d = desired(dedicated(), Some(RULES));
        let o = Observed {
            jail_running: true,
            network_attached: true,
            rules: RulesState::Loaded { matches: true },
        };
        let p = plan_stop(&d, &o);
        assert_eq!(
            p.render(&d),
            "1. run exec.stop inside www: /bin/sh /etc/rc.shutdown\n\
             2. send SIGTERM to the processes of www and wait up to 10 s (stop.timeout)\n\
             3. remove jail www and end its processes\n\
             4. flush firewall rules jnet/www\n\
             5. run exec.poststop on the host: logger stopped www\n\
             6. detach 10.0.0.5/24 of www from jnbr0\n"
        );
    }

    #[test]
    fn stop_of_stopped_and_half_started() {
        let d = desired(dedicated(), Some(RULES));
        let p = plan_stop(&d, &Observed::NOTHING);
        assert!(p.is_empty());
        assert_eq!(p.render(&d), "www: already stopped; nothing to do\n");
        let o = Observed {
            jail_running: false,
            network_attached: true,
            rules: RulesState::Absent,
        };
        assert_eq!(
            plan_stop(&d, &o).render(&d),
            "1. detach 10.0.0.5/24 of www from jnbr0\n"
        );
    }

    #[test]
    fn no_port_check_when_not_wanted() {
        let mut d = desired(JailNetwork::INHERIT, None);
        d.port_check = false;
        d.exec = ExecHooks::default();
        let p = plan_start(&d, &Observed::NOTHING);
        assert_eq!(p.steps, vec![Step::new(Action::CreateJail)]);
    }

    #[test]
    fn rules_match_nft_script_against_listing() {
        // The platform's syntax decides; both are covered in core::rules::drift.
        if crate::core::rules::drift::Syntax::native() == crate::core::rules::drift::Syntax::Nft {
            let script = "add table inet jnet\nadd chain inet jnet jail_www_dnat\n\
                          add rule inet jnet jail_www_dnat tcp dport 8080 dnat ip to 10.0.0.5:80\n";
            let listing =
                "table inet jnet {\n\tchain jail_www_dnat {\n\t\ttcp dport 8080 dnat ip to 10.0.0.5:80\n\t}\n}\n";
            assert!(rules_match(script, listing));
            assert!(!rules_match(script, &listing.replace("8080", "8081")));
            assert!(!rules_match(script, ""));
        } else {
            assert!(rules_match(&format!("# jnet/www\n{RULES}"), RULES));
            assert!(!rules_match(RULES, ""));
        }
        assert!(rules_match("# header\n\n", ""));
    }

    /// jail(8)'s step order, as the table `startcommands` / `stopcommands`
    /// in usr.sbin/jail/jail.c (FreeBSD main 2022-07 e7646b05, jail.c:88-132)
    /// lists it, reduced to the steps jnet takes. `IP__IP4_IFADDR` (92) and
    /// `IP__IP6_IFADDR` are "address"; the mount entries (97-101 `IP_MOUNT`,
    /// `IP__MOUNT_FROM_FSTAB`, `IP_MOUNT_DEVFS`, `IP_MOUNT_FDESCFS`,
    /// `IP_MOUNT_PROCFS`) are "mount", and in stop order (119-123) "unmount";
    /// `IP__OP` is create (103) or remove (117); `IP_STOP_TIMEOUT` (116) is
    /// the SIGTERM wait.
    const JAIL_C_START: &[&str] = &[
        "exec.prepare",   // 90  IP_EXEC_PREPARE
        "address",        // 92  IP__IP4_IFADDR
        "mount",          // 97-101 IP_MOUNT .. IP_MOUNT_PROCFS
        "exec.prestart",  // 102 IP_EXEC_PRESTART
        "create",         // 103 IP__OP
        "exec.created",   // 104 IP_EXEC_CREATED
        "exec.start",     // 106 IP_EXEC_START
        "exec.poststart", // 108 IP_EXEC_POSTSTART
    ];
    const JAIL_C_STOP: &[&str] = &[
        "exec.prestop",  // 114 IP_EXEC_PRESTOP
        "exec.stop",     // 115 IP_EXEC_STOP
        "stop.timeout",  // 116 IP_STOP_TIMEOUT
        "remove",        // 117 IP__OP
        "exec.poststop", // 118 IP_EXEC_POSTSTOP
        "unmount",       // 119-123 IP_MOUNT_PROCFS .. IP_MOUNT
        "address",       // 128 IP__IP4_IFADDR
        "exec.release",  // 130 IP_EXEC_RELEASE
    ];

    /// The jail(8) name of a step, or None for jnet's own (port check,
    /// firewall), which jail(8) does not have.
    fn jail_c_name(a: &Action) -> Option<&'static str> {
        match a {
            Action::AttachNetwork | Action::DetachNetwork => Some("address"),
            Action::CreateJail => Some("create"),
            Action::RemoveJail => Some("remove"),
            Action::TerminateJail => Some("stop.timeout"),
            Action::ExecHost { hook, .. } | Action::ExecJail { hook, .. } => Some(hook.as_str()),
            Action::Mount(_) => Some("mount"),
            Action::Unmount(_) => Some("unmount"),
            Action::CheckPorts | Action::LoadRules | Action::FlushRules => None,
        }
    }

    #[test]
    fn start_and_stop_follow_jail_c_for_every_combination_of_hooks() {
        const HOOKS: [Hook; 9] = [
            Hook::Prepare,
            Hook::Prestart,
            Hook::Created,
            Hook::Start,
            Hook::Poststart,
            Hook::Prestop,
            Hook::Stop,
            Hook::Poststop,
            Hook::Release,
        ];
        for (net, with_mount) in [(dedicated(), false), (JailNetwork::INHERIT, false), (dedicated(), true)] {
            for mask in 0u32..(1 << HOOKS.len()) {
                let mut d = desired(net.clone(), Some(RULES));
                d.exec = ExecHooks::default();
                if with_mount {
                    d.exec.mounts = vec![crate::os::mount::builtin(
                        std::path::Path::new("/jails/www"),
                        crate::os::mount::Builtin::Procfs,
                    )
                    .unwrap()];
                }
                for (i, h) in HOOKS.iter().enumerate() {
                    if mask & (1 << i) == 0 {
                        continue;
                    }
                    let list = match h {
                        Hook::Prepare => &mut d.exec.prepare,
                        Hook::Prestart => &mut d.exec.prestart,
                        Hook::Created => &mut d.exec.created,
                        Hook::Start => &mut d.exec.start,
                        Hook::Poststart => &mut d.exec.poststart,
                        Hook::Prestop => &mut d.exec.prestop,
                        Hook::Stop => &mut d.exec.stop,
                        Hook::Poststop => &mut d.exec.poststop,
                        Hook::Release => &mut d.exec.release,
                    };
                    list.push(format!("echo {}", h.as_str()));
                }
                let present = |name: &str| match HOOKS.iter().find(|h| h.as_str() == name) {
                    Some(h) => mask & (1 << HOOKS.iter().position(|x| x == h).unwrap()) != 0,
                    None if name == "mount" || name == "unmount" => with_mount,
                    None => name != "address" || net.has_own(),
                };
                let want_start: Vec<&str> = JAIL_C_START.iter().copied().filter(|n| present(n)).collect();
                let want_stop: Vec<&str> = JAIL_C_STOP.iter().copied().filter(|n| present(n)).collect();
                let start = plan_start(&d, &Observed::NOTHING);
                let got: Vec<&str> = start.steps.iter().filter_map(|s| jail_c_name(&s.action)).collect();
                assert_eq!(got, want_start, "start, hooks {mask:#b}, {net:?}");
                // jnet's own steps: the port check first, the firewall last.
                assert_eq!(start.steps.first().map(|s| &s.action), Some(&Action::CheckPorts));
                assert_eq!(start.steps.last().map(|s| &s.action), Some(&Action::LoadRules));
                let running = Observed {
                    jail_running: true,
                    network_attached: true,
                    rules: RulesState::Loaded { matches: true },
                };
                let stop = plan_stop(&d, &running);
                let got: Vec<&str> = stop.steps.iter().filter_map(|s| jail_c_name(&s.action)).collect();
                assert_eq!(got, want_stop, "stop, hooks {mask:#b}, {net:?}");
                // The firewall goes with the jail, before exec.poststop.
                let pos = |a: &Action| stop.steps.iter().position(|s| &s.action == a);
                assert_eq!(pos(&Action::FlushRules), pos(&Action::RemoveJail).map(|i| i + 1));
            }
        }
    }
}
