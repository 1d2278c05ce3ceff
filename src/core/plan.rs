//! The lifecycle planner (pure): from what a jail should be ([`Desired`])
//! and what the host shows ([`Observed`]) it computes the ordered steps of a
//! start or a stop ([`Plan`]), each with its undo.
//!
//! Step order follows jail(8)'s shape as jnet drives it (DESIGN.md §3, issue
//! 5): start = port check, address (alias / namespace), create, exec.prestart
//! (host), exec.start (inside), exec.poststart (host), firewall load; stop =
//! exec.prestop (host), exec.stop (inside), remove, firewall flush, address
//! removal, exec.poststop (host). Steps whose effect is already in place are
//! left out, so a plan for a running jail is empty ("already running").
//!
//! This module does no I/O: applying a plan is `engine::lifecycle`'s job.

use std::fmt;

use crate::core::names::JailName;
use crate::os::{JailNetwork, JailSpec};

/// The jail.conf(5) `exec.*` command lists of one jail. Host hooks run with
/// `/bin/sh -c`; `start`/`stop` run the same way inside the jail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecHooks {
    pub prestart: Vec<String>,
    pub start: Vec<String>,
    pub poststart: Vec<String>,
    pub prestop: Vec<String>,
    pub stop: Vec<String>,
    pub poststop: Vec<String>,
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
}

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
    Prestart,
    Start,
    Poststart,
    Prestop,
    Stop,
    Poststop,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Prestart => "exec.prestart",
            Hook::Start => "exec.start",
            Hook::Poststart => "exec.poststart",
            Hook::Prestop => "exec.prestop",
            Hook::Stop => "exec.stop",
            Hook::Poststop => "exec.poststop",
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
    RemoveJail,
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
            Action::RemoveJail => "remove jail",
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
            Action::AttachNetwork => match &d.spec.network {
                JailNetwork::Inherit => {
                    format!("{jail} shares the host's addresses (nothing to attach)")
                }
                JailNetwork::Dedicated {
                    address,
                    prefix,
                    interface,
                    ..
                } => {
                    format!("attach {address}/{prefix} for {jail} on {interface}")
                }
            },
            Action::DetachNetwork => match &d.spec.network {
                JailNetwork::Inherit => {
                    format!("{jail} shares the host's addresses (nothing to detach)")
                }
                JailNetwork::Dedicated {
                    address,
                    prefix,
                    interface,
                    ..
                } => {
                    format!("detach {address}/{prefix} of {jail} from {interface}")
                }
            },
            Action::CreateJail => format!("create jail {jail} (path {})", d.spec.path.display()),
            Action::RemoveJail => format!("remove jail {jail} and end its processes"),
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

fn has_network(d: &Desired) -> bool {
    matches!(d.spec.network, JailNetwork::Dedicated { .. })
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
    if need_net {
        steps.push(Step::new(Action::AttachNetwork));
    }
    if need_jail {
        steps.push(Step::new(Action::CreateJail));
        exec_steps(&mut steps, Hook::Prestart, &d.exec.prestart);
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
    if steps.is_empty() {
        adopted.clear();
    }
    Plan {
        verb: Verb::Start,
        steps,
        adopted,
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
        steps.push(Step::new(Action::RemoveJail));
    }
    if o.rules != RulesState::Absent {
        steps.push(Step::new(Action::FlushRules));
    }
    if has_network(d) && o.network_attached {
        steps.push(Step::new(Action::DetachNetwork));
    }
    if o.jail_running {
        exec_steps(&mut steps, Hook::Poststop, &d.exec.poststop);
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
            },
            rules: rules.map(str::to_string),
            port_check: true,
            anchor_root: "jnet".into(),
        }
    }

    fn dedicated() -> JailNetwork {
        JailNetwork::Dedicated {
            address: "10.0.0.5".parse().unwrap(),
            prefix: 24,
            interface: IfName::new("jnbr0").unwrap(),
            gateway: Some("10.0.0.1".parse().unwrap()),
        }
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
             3. create jail www (path /jails/www)  [undo: remove jail www and end its processes]\n\
             4. run exec.prestart on the host: logger starting www\n\
             5. run exec.start inside www: /bin/sh /etc/rc\n\
             6. load firewall rules jnet/www  [undo: flush firewall rules jnet/www]\n"
        );
        assert!(p.adopted.is_empty());
    }

    #[test]
    fn fresh_start_inherit_has_no_address_step() {
        let d = desired(JailNetwork::Inherit, None);
        // Inherit jails have nothing to attach: observed as attached.
        let o = Observed {
            network_attached: true,
            ..Observed::NOTHING
        };
        let p = plan_start(&d, &o);
        assert_eq!(
            p.render(&d),
            "1. check that the ports of www are free\n\
             2. create jail www (path /jails/www)  [undo: remove jail www and end its processes]\n\
             3. run exec.prestart on the host: logger starting www\n\
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
             2. create jail www (path /jails/www)  [undo: remove jail www and end its processes]\n\
             3. run exec.prestart on the host: logger starting www\n\
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
        assert_eq!(p.adopted, vec![Action::RemoveJail, Action::DetachNetwork]);
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
             2. remove jail www and end its processes\n\
             3. flush firewall rules jnet/www\n\
             4. detach 10.0.0.5/24 of www from jnbr0\n\
             5. run exec.poststop on the host: logger stopped www\n"
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
        let mut d = desired(JailNetwork::Inherit, None);
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
}
