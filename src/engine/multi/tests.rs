//! Walks over the recording fake host: order, failure skipping, loops.

use std::time::Duration;

use super::*;
use crate::core::config::parse_config;
use crate::core::plan::ExecHooks;
use crate::engine::fake_host::FakeHost;
use crate::store::{JailRecord, Store};

const CONF: &str = "[host]\nexternal_interface=\"em0\"\n";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    config: Config,
    profiles: Profiles,
    conf: Vec<ConfJail>,
    host: FakeHost,
}

impl Fixture {
    /// Inherit jails `names` in the inventory; jail.conf gives each an
    /// exec.start and the `depend` edges `deps`.
    fn new(names: &[&str], deps: &[(&str, &[&str])]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Duration::from_millis(200));
        store
            .update(|inv| {
                for n in names {
                    inv.jails.insert(JailName::new(n).unwrap(), JailRecord::inherit());
                }
                Ok(())
            })
            .unwrap();
        let conf = names
            .iter()
            .map(|n| ConfJail {
                name: n.to_string(),
                location: format!("jail.conf:{}", n.len()),
                exec: ExecHooks {
                    start: vec![format!("run-{n}")],
                    ..Default::default()
                },
                depend: deps
                    .iter()
                    .find(|(j, _)| j == n)
                    .map(|(_, d)| d.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                ..Default::default()
            })
            .collect();
        Fixture {
            _dir: dir,
            store,
            config: parse_config("jnet.toml", CONF).unwrap(),
            profiles: Profiles::new(Path::new("/nonexistent")),
            conf,
            host: FakeHost::new(),
        }
    }

    fn sources(&self) -> Sources<'_> {
        Sources {
            config: &self.config,
            config_path: Path::new("jnet.toml"),
            profiles: &self.profiles,
            store: &self.store,
            conf_jails: &self.conf,
        }
    }

    fn run(&self, verb: Verb, targets: &[&str]) -> Result<Summary> {
        let t = if targets.is_empty() {
            Targets::All
        } else {
            Targets::Named(targets.iter().map(|n| JailName::new(n).unwrap()).collect())
        };
        self.sources().run(&self.host, verb, &t)
    }

    /// The create/remove calls so far, in order.
    fn lifecycle_calls(&self) -> Vec<String> {
        self.host
            .take_calls()
            .into_iter()
            .filter(|c| c.starts_with("create_jail") || c.starts_with("remove_jail"))
            .collect()
    }
}

fn outcomes(s: &Summary) -> Vec<String> {
    s.jails
        .iter()
        .map(|j| {
            let mut t = format!("{} {}", j.jail, j.outcome.as_str());
            if let Some(b) = &j.because {
                t.push_str(&format!(" because {b}"));
            }
            t
        })
        .collect()
}

const WEB: &[(&str, &[&str])] = &[("www", &["db"]), ("db", &["base"])];

#[test]
fn starting_a_jail_starts_its_dependencies_first_and_nothing_else() {
    let f = Fixture::new(&["base", "db", "www", "mail"], WEB);
    let s = f.run(Verb::Start, &["www"]).unwrap();
    assert_eq!(
        f.lifecycle_calls(),
        ["create_jail base", "create_jail db", "create_jail www"]
    );
    assert_eq!(outcomes(&s), ["base started", "db started", "www started"]);
    assert_eq!(
        s.jails.iter().map(|j| j.target).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(s.ok() && s.first_error().is_none());
    // Each jail finished (exec.start ran) before the next was created.
    let snap = f.host.snapshot();
    assert_eq!(snap.jails.len(), 3);
    assert!(!snap.jails.contains_key(&JailName::new("mail").unwrap()));
}

#[test]
fn all_starts_in_dependency_order_stops_in_reverse_and_is_idempotent() {
    let f = Fixture::new(&["base", "db", "www", "mail"], WEB);
    let s = f.run(Verb::Start, &[]).unwrap();
    assert_eq!(
        f.lifecycle_calls(),
        [
            "create_jail base",
            "create_jail db",
            "create_jail mail",
            "create_jail www"
        ]
    );
    assert!(s.ok());
    // Again: everything is running already, nothing is done, success.
    let again = f.run(Verb::Start, &[]).unwrap();
    assert!(again.ok());
    assert!(f.lifecycle_calls().is_empty());
    assert!(again.jails.iter().all(|j| j.outcome == JailResult::AlreadyRunning));

    let s = f.run(Verb::Stop, &[]).unwrap();
    assert_eq!(
        f.lifecycle_calls(),
        [
            "remove_jail mail",
            "remove_jail www",
            "remove_jail db",
            "remove_jail base"
        ]
    );
    assert!(s.jails.iter().all(|j| j.outcome == JailResult::Stopped), "{s:?}");
    let again = f.run(Verb::Stop, &[]).unwrap();
    assert!(again.ok() && again.jails.iter().all(|j| j.outcome == JailResult::AlreadyStopped));
}

#[test]
fn stopping_a_jail_stops_its_dependents_first() {
    let f = Fixture::new(&["base", "db", "www", "mail"], WEB);
    f.run(Verb::Start, &[]).unwrap();
    f.host.take_calls();
    let s = f.run(Verb::Stop, &["base"]).unwrap();
    assert_eq!(
        f.lifecycle_calls(),
        ["remove_jail www", "remove_jail db", "remove_jail base"]
    );
    assert_eq!(outcomes(&s), ["www stopped", "db stopped", "base stopped"]);
    assert!(f.host.snapshot().jails.contains_key(&JailName::new("mail").unwrap()));
}

#[test]
fn a_failed_start_skips_its_dependents_and_spares_independent_jails() {
    let f = Fixture::new(&["base", "db", "www", "mail"], WEB);
    f.host.fail_on("create_jail db");
    let s = f.run(Verb::Start, &[]).unwrap();
    assert_eq!(
        outcomes(&s),
        ["base started", "db failed", "mail started", "www skipped because db"]
    );
    assert!(!s.ok());
    assert!(s.first_error().is_some());
    let db = &s.jails[1];
    assert!(
        db.error.as_deref().is_some_and(|e| e.contains("create_jail db")),
        "{db:?}"
    );
    assert_eq!(s.line(), "start: 4 jail(s): 2 started, 1 failed (db), 1 skipped (www)");
    // www was never attempted; db was undone.
    let calls = f.lifecycle_calls();
    assert!(!calls.iter().any(|c| c.contains("www")), "{calls:?}");
    let snap = f.host.snapshot();
    assert!(!snap.jails.contains_key(&JailName::new("db").unwrap()));
    assert!(!snap.jails.contains_key(&JailName::new("www").unwrap()));
}

#[test]
fn a_failed_stop_keeps_what_it_needs_running() {
    let f = Fixture::new(&["base", "db", "www"], WEB);
    f.run(Verb::Start, &[]).unwrap();
    f.host.fail_on("remove_jail www");
    let s = f.run(Verb::Stop, &["db"]).unwrap();
    assert_eq!(outcomes(&s), ["www failed", "db skipped because www"]);
    assert!(f.host.snapshot().jails.contains_key(&JailName::new("db").unwrap()));
}

#[test]
fn a_loop_is_refused_before_anything_runs_naming_its_jails() {
    let f = Fixture::new(&["a", "b", "c", "d"], &[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
    let e = f.run(Verb::Start, &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("dependency loop: a -> b -> c -> a"), "{e}");
    assert!(f.host.take_calls().is_empty(), "nothing may run");
    // A jail outside the loop still starts alone.
    assert!(f.run(Verb::Start, &["d"]).unwrap().ok());
}

#[test]
fn an_undefined_dependency_is_refused_with_its_location() {
    let f = Fixture::new(&["www"], &[("www", &["nosuch"])]);
    let e = f.run(Verb::Start, &["www"]).unwrap_err().to_string();
    assert!(
        e.contains("jail.conf:3: jail www depends on undefined jail nosuch"),
        "{e}"
    );
    assert!(f.host.take_calls().is_empty());
    let f = Fixture::new(&["www"], &[]);
    let e = f.run(Verb::Start, &["other"]).unwrap_err().to_string();
    assert!(
        e.contains("jail other is not in the inventory (give it an address first"),
        "{e}"
    );
}

#[test]
fn restart_stops_dependents_first_and_starts_them_again_after() {
    let f = Fixture::new(&["base", "db", "www"], WEB);
    f.run(Verb::Start, &[]).unwrap();
    f.host.take_calls();
    let s = f.run(Verb::Restart, &["db"]).unwrap();
    assert_eq!(
        f.lifecycle_calls(),
        ["remove_jail www", "remove_jail db", "create_jail db", "create_jail www"]
    );
    // base was already running: db's start needs it but leaves it be.
    assert_eq!(outcomes(&s), ["www restarted", "db restarted", "base already running"]);
    // A jail nothing depends on: what it needs is checked, and left be.
    let s = f.run(Verb::Restart, &["www"]).unwrap();
    assert_eq!(
        outcomes(&s),
        ["www restarted", "base already running", "db already running"]
    );
    assert_eq!(f.lifecycle_calls(), ["remove_jail www", "create_jail www"]);
    // One with neither dependencies nor dependents restarts under one
    // hold of its lock.
    let f = Fixture::new(&["solo"], &[]);
    f.run(Verb::Start, &[]).unwrap();
    f.host.take_calls();
    let s = f.run(Verb::Restart, &["solo"]).unwrap();
    assert_eq!(outcomes(&s), ["solo restarted"]);
    assert_eq!(f.lifecycle_calls(), ["remove_jail solo", "create_jail solo"]);
}

#[test]
fn a_dependency_jnet_does_not_manage_must_already_be_so() {
    // db is in jail.conf only: jnet cannot start it.
    let mut f = Fixture::new(&["www"], &[("www", &["db"])]);
    f.conf.push(ConfJail {
        name: "db".into(),
        location: "jail.conf:9".into(),
        ..Default::default()
    });
    let s = f.run(Verb::Start, &["www"]).unwrap();
    assert_eq!(outcomes(&s), ["db failed", "www skipped because db"]);
    assert!(
        s.jails[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("start it with jail(8)")),
        "{s:?}"
    );
    // Running already (jail(8) started it): the walk goes on.
    spec_create(&f.host, "db");
    f.host.take_calls();
    let s = f.run(Verb::Start, &["www"]).unwrap();
    assert_eq!(outcomes(&s), ["db already running", "www started"]);
    // Stopping db's dependents is jnet's part; db itself is not touched...
    // but naming db as a target is refused: it is not in the inventory.
    let s = f.run(Verb::Stop, &["www"]).unwrap();
    assert_eq!(outcomes(&s), ["www stopped"]);
    let s = f.run(Verb::Stop, &["db"]).unwrap();
    assert_eq!(outcomes(&s), ["www already stopped", "db failed"]);
    assert!(
        s.jails[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("not in the inventory")),
        "{s:?}"
    );
    assert!(f.host.snapshot().jails.contains_key(&JailName::new("db").unwrap()));
    // A running dependent jnet does not manage blocks the stop of what it needs.
    let mut f = Fixture::new(&["db"], &[]);
    f.conf.push(ConfJail {
        name: "app".into(),
        location: "jail.conf:9".into(),
        depend: vec!["db".into()],
        ..Default::default()
    });
    f.run(Verb::Start, &["db"]).unwrap();
    let s = f.run(Verb::Stop, &["db"]).unwrap();
    assert_eq!(outcomes(&s), ["app already stopped", "db stopped"]);
    spec_create(&f.host, "app");
    f.run(Verb::Start, &["db"]).unwrap();
    let s = f.run(Verb::Stop, &["db"]).unwrap();
    assert_eq!(outcomes(&s), ["app failed", "db skipped because app"]);
    assert!(
        s.jails[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("stop it with jail(8) first")),
        "{s:?}"
    );
}

fn spec_create(host: &FakeHost, name: &str) {
    let spec = crate::os::JailSpec {
        name: JailName::new(name).unwrap(),
        path: "/".into(),
        hostname: None,
        network: crate::os::JailNetwork::INHERIT,
        params: vec![],
    };
    crate::os::Host::create_jail(host, &spec).unwrap();
}

#[test]
fn plans_follow_the_walk_without_applying_anything() {
    let f = Fixture::new(&["base", "db", "www"], WEB);
    let t = Targets::Named(vec![JailName::new("www").unwrap()]);
    let p = f.sources().plan(&f.host, false, &t).unwrap();
    let names: Vec<&str> = p.iter().map(|x| x.jail.as_str()).collect();
    assert_eq!(names, ["base", "db", "www"]);
    assert!(p
        .iter()
        .all(|x| matches!(&x.plan, Ok(Ok((pl, _))) if !pl.steps.is_empty())));
    assert!(f.lifecycle_calls().is_empty());
    let p = f.sources().plan(&f.host, true, &Targets::All).unwrap();
    let names: Vec<&str> = p.iter().map(|x| x.jail.as_str()).collect();
    assert_eq!(names, ["www", "db", "base"]);
}
