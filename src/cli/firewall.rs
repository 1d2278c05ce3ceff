//! Handlers for `expose`, `unexpose` and `pf render|reload|flush|status`.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::cli::args::{ExposeArgs, Format, PfCommand, SyntaxArg};
use crate::cli::commands::{jail_name, Session};
use crate::cli::output::{print_json, Table};
use crate::core::check::Severity;
use crate::core::lifecycle::Phase;
use crate::core::names::JailName;
use crate::core::ports::{parse_expose_with_address, Expose, PortRange, Proto};
use crate::core::rules::drift;
use crate::engine::firewall::{self, State, Syntax};
use crate::engine::jails::{self, JailView};
use crate::engine::{host::system_host, portcheck, sources};
use crate::error::{Error, ExitStatus, Result};
use crate::os::Host;
use crate::store::Mode;

fn syntax(a: Option<SyntaxArg>) -> Syntax {
    match a {
        Some(SyntaxArg::Pf) => Syntax::Pf,
        Some(SyntaxArg::Nft) => Syntax::Nft,
        None => Syntax::native(),
    }
}

/// Renders `v`'s rules in the native syntax and loads them, or flushes the
/// jail's rules when it needs none.
fn apply(s: &Session, host: &dyn Host, v: &JailView) -> Result<usize> {
    let anchor = &s.config.host.anchor;
    match firewall::jail_rules(&s.config, v)? {
        Some(rules) => {
            let tmpl = firewall::pf_template(&sources::config_dir(&s.config_path))?;
            let text = firewall::render(Syntax::native(), &rules, anchor, &tmpl)?;
            host.load_rules(anchor, &v.name, &text)?;
            Ok(rules.redirects.len() + rules.nats.len())
        }
        None => {
            host.flush_rules(anchor, &v.name)?;
            Ok(0)
        }
    }
}

fn dedicated_view(s: &Session, jail: &JailName) -> Result<JailView> {
    let inv = s.store.read()?;
    let v = jails::view(&s.config, &inv, &s.profiles, jail)?;
    match v.mode() {
        Some(Mode::Dedicated) => Ok(v),
        Some(Mode::Inherit) => Err(Error::data(format!(
            "jail {jail} shares the host's addresses (inherit): its ports are reachable on the host's addresses \
             already; exposures need a dedicated address"
        ))),
        None => Err(Error::data(format!(
            "jail {jail} has no address in the inventory; assign one first (jnet assign {jail} --pool P | ADDRESS)"
        ))),
    }
}

pub fn expose(s: &Session, a: &ExposeArgs) -> Result<ExitStatus> {
    let jail = jail_name(&a.jail)?;
    let mut e: Expose = a
        .spec
        .parse()
        .map_err(|e: crate::core::ports::PortError| Error::data(e.to_string()))?;
    if let Some(addr) = &a.address {
        let ip: Ipv4Addr = addr
            .parse()
            .map_err(|_| Error::data(format!("--address {addr:?} is not an IPv4 address")))?;
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return Err(Error::data(format!("--address {ip} cannot be an external address")));
        }
        e.address = Some(ip);
    }
    dedicated_view(s, &jail)?;
    // why the jail lock: a running jail's rules are reloaded below, and a
    // start or stop of the same jail must not interleave with that.
    let _jail_lock = s.store.lock_jail(&jail)?;
    let host = system_host()?;
    let scan = portcheck::scan(host.as_ref(), &s.config, &jails::views(&s.config, &s.store.read()?, &s.profiles)?)?;
    // why everything below runs inside the update: the claims and exposures
    // the new one is checked against, and the record it is added to, must be
    // the locked inventory's, or two concurrent exposes of one host port both
    // pass, and a concurrent release turns into a crash (H5).
    let address = s.store.update(|inv| {
        let mut views = jails::views(&s.config, inv, &s.profiles)?;
        let v = views
            .get_mut(&jail)
            .filter(|v| v.mode() == Some(Mode::Dedicated))
            .ok_or_else(|| Error::data(format!("jail {jail} lost its dedicated address meanwhile")))?;
        if v.exposures.contains(&e) {
            return Ok(None);
        }
        if let Some(other) = v.exposures.iter().find(|x| x.host_overlaps(&e)) {
            return Err(Error::data(format!("{jail}: {e} overlaps its exposure {other}")));
        }
        let address = v.address();
        // The port check with and without the new exposure: conflicts that
        // only appear with it mean its host port is taken.
        let before = portcheck::analyze(&scan, &s.config, &views, std::slice::from_ref(&jail));
        if let Some(v) = views.get_mut(&jail) {
            v.exposures.push(e);
        }
        let after = portcheck::analyze(&scan, &s.config, &views, std::slice::from_ref(&jail));
        let new: Vec<&str> = after
            .report
            .conflicts
            .iter()
            .filter(|c| c.severity == Severity::Error && !before.report.conflicts.contains(c))
            .map(|c| c.message.as_str())
            .collect();
        if !new.is_empty() {
            return Err(Error::data(format!("{jail}: cannot expose {e}: {}", new.join("; "))));
        }
        let rec = inv
            .jails
            .get_mut(&jail)
            .ok_or_else(|| Error::data(format!("jail {jail} lost its dedicated address meanwhile")))?;
        rec.exposes.push(e);
        // why: with the lock held, a running jail's rules are reloaded
        // before the inventory is written, so a failed load changes nothing.
        if rec.phase == Phase::Running {
            let v = jails::view(&s.config, inv, &s.profiles, &jail)?;
            apply(s, host.as_ref(), &v)?;
        }
        Ok(Some(address))
    })?;
    match address {
        None => println!("{jail}: {e} is already exposed; nothing changed"),
        Some(Some(a)) => println!("{jail}: exposed {e} -> {a}"),
        Some(None) => println!("{jail}: exposed {e}"),
    }
    Ok(ExitStatus::Ok)
}

/// `proto/port` or `proto/lo-hi` naming an exposure by its host side.
fn parse_host_side(spec: &str) -> Result<(Proto, PortRange)> {
    let e = parse_expose_with_address(spec).map_err(|e| Error::data(e.to_string()))?;
    Ok((e.proto, e.host))
}

pub fn unexpose(s: &Session, jail: &str, spec: &str) -> Result<ExitStatus> {
    let jail = jail_name(jail)?;
    let (proto, host_ports) = parse_host_side(spec)?;
    let v = dedicated_view(s, &jail)?;
    let matches = |x: &Expose| x.proto == proto && x.host == host_ports;
    let Some(found) = v.exposures.iter().copied().find(|x| matches(x)) else {
        println!("{jail}: {proto}/{host_ports} is not exposed; nothing changed");
        return Ok(ExitStatus::Ok);
    };
    if v.exposure_in_config(&found) {
        return Err(Error::data(format!(
            "{jail}: {found} is declared in {} (jails.{jail}.expose or its profile); remove it there",
            v.location.as_deref().unwrap_or(&s.config.file)
        )));
    }
    let _jail_lock = s.store.lock_jail(&jail)?;
    let host = system_host()?;
    s.store.update(|inv| {
        let rec = inv
            .jails
            .get_mut(&jail)
            .ok_or_else(|| Error::data(format!("jail {jail} vanished meanwhile")))?;
        rec.exposes.retain(|x| !matches(x));
        if rec.phase == Phase::Running {
            let v = jails::view(&s.config, inv, &s.profiles, &jail)?;
            apply(s, host.as_ref(), &v)?;
        }
        Ok(())
    })?;
    println!("{jail}: no longer exposes {found}");
    Ok(ExitStatus::Ok)
}

pub fn pf(s: &Session, cmd: &PfCommand) -> Result<ExitStatus> {
    match cmd {
        PfCommand::Render { jail, syntax: syn } => render(s, jail.as_deref(), syntax(*syn)),
        PfCommand::Reload { jail, all } => {
            crate::cli::commands::require_root("jnet pf reload")?;
            reload(s, jail.as_deref(), *all)
        }
        PfCommand::Flush { jail } => {
            crate::cli::commands::require_root("jnet pf flush")?;
            let jail = jail_name(jail)?;
            system_host()?.flush_rules(&s.config.host.anchor, &jail)?;
            println!("{jail}: flushed {}/{jail}", s.config.host.anchor);
            Ok(ExitStatus::Ok)
        }
        PfCommand::Status(f) => status(s, f.format),
    }
}

fn render(s: &Session, jail: Option<&str>, syn: Syntax) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let views = match jail {
        Some(j) => {
            let j = jail_name(j)?;
            if !inv.jails.contains_key(&j) && !s.config.jails.contains_key(&j) {
                return Err(Error::data(format!(
                    "jail {j} is neither in the inventory nor in {}",
                    s.config.file
                )));
            }
            vec![jails::view(&s.config, &inv, &s.profiles, &j)?]
        }
        None => jails::views(&s.config, &inv, &s.profiles)?.into_values().collect(),
    };
    let tmpl = firewall::pf_template(&sources::config_dir(&s.config_path))?;
    let mut first = true;
    for v in &views {
        let Some(rules) = firewall::jail_rules(&s.config, v)? else {
            if jail.is_some() {
                println!("# jail {}: no exposures and no nat, nothing to load", v.name);
            }
            continue;
        };
        if !first {
            println!();
        }
        first = false;
        print!("{}", firewall::render(syn, &rules, &s.config.host.anchor, &tmpl)?);
    }
    Ok(ExitStatus::Ok)
}

fn reload(s: &Session, jail: Option<&str>, all: bool) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let targets: Vec<JailView> = match (jail, all) {
        (Some(j), false) => vec![jails::view(&s.config, &inv, &s.profiles, &jail_name(j)?)?],
        (None, true) => jails::views(&s.config, &inv, &s.profiles)?
            .into_values()
            .filter(|v| v.record.as_ref().is_some_and(|r| r.phase == Phase::Running))
            .collect(),
        _ => return Err(Error::data("give a jail or --all")),
    };
    let host = system_host()?;
    let anchor = &s.config.host.anchor;
    for v in &targets {
        let n = apply(s, host.as_ref(), v)?;
        if n == 0 {
            println!("{}: no rules; {anchor}/{} flushed", v.name, v.name);
        } else {
            println!("{}: loaded {n} rule(s) into {anchor}/{}", v.name, v.name);
        }
    }
    if targets.is_empty() {
        println!("no running jails; nothing to reload");
    }
    Ok(ExitStatus::Ok)
}

#[derive(Serialize)]
struct AnchorStatus {
    jail: String,
    anchor: String,
    phase: Phase,
    #[serde(flatten)]
    state: State,
}

#[derive(Serialize)]
struct StatusOut {
    hooks_missing: Vec<String>,
    anchors: Vec<AnchorStatus>,
}

fn status(s: &Session, format: Format) -> Result<ExitStatus> {
    let inv = s.store.read()?;
    let views = jails::views(&s.config, &inv, &s.profiles)?;
    let host = system_host()?;
    let anchor = &s.config.host.anchor;
    let syn = Syntax::native();
    let tmpl = firewall::pf_template(&sources::config_dir(&s.config_path))?;
    let mut out = StatusOut {
        hooks_missing: host.missing_firewall_hooks(anchor)?,
        anchors: vec![],
    };
    for (name, v) in &views {
        let Some(rec) = &v.record else { continue };
        // Rules belong in the firewall only while the jail runs.
        let want = match rec.phase {
            Phase::Running => firewall::jail_rules(&s.config, v)?,
            _ => None,
        };
        let rendered = want.map(|r| firewall::render(syn, &r, anchor, &tmpl)).transpose()?;
        let loaded = host.loaded_rules(anchor, name)?;
        let state = drift::compare(syn, rendered.as_deref(), loaded.as_deref());
        out.anchors.push(AnchorStatus {
            jail: name.to_string(),
            anchor: format!("{anchor}/{name}"),
            phase: rec.phase,
            state,
        });
    }
    if format == Format::Json {
        return print_json(&out);
    }
    for h in &out.hooks_missing {
        println!("pf.conf lacks: {h}");
    }
    let mut t = Table::new(&["JAIL", "ANCHOR", "STATE", "DETAILS"]);
    for a in &out.anchors {
        let (st, details) = match &a.state {
            State::InSync => ("in-sync", String::new()),
            State::NotLoaded => ("not-loaded", "run: jnet pf reload ".to_string() + &a.jail),
            State::Drift { missing, unexpected } => (
                "drift",
                format!("{} missing, {} unexpected", missing.len(), unexpected.len()),
            ),
            State::Stale { rules } => (
                "stale",
                format!("{} rule(s) loaded for a jail that needs none", rules.len()),
            ),
            State::Empty => ("empty", String::new()),
        };
        t.row(vec![a.jail.clone(), a.anchor.clone(), st.to_string(), details]);
    }
    t.print();
    Ok(ExitStatus::Ok)
}
