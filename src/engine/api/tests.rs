//! The engine's API driven as a caller drives it, without the CLI: a
//! jail's whole life (assign, expose, render, start, status, pf status,
//! stop, release) on the recording fake host, and refusals that change
//! nothing.

use std::rc::Rc;
use std::time::Duration;

use super::lifecycle::StatusFilter;
use super::{Engine, Options};
use crate::core::lifecycle::Phase;
use crate::core::model::Mode;
use crate::core::names::{JailName, PoolName};
use crate::core::ports::Expose;
use crate::engine::addresses::AssignRequest;
use crate::engine::fake_host::FakeHost;
use crate::engine::firewall::{State, Syntax};
use crate::engine::multi::{JailResult, Targets, Verb};
use crate::error::Error;

// TEST-NET-2 (RFC 5737): no interface of a test machine carries it, so
// the host's real addresses cannot collide with the pool.
const CONFIG: &str = r#"
[host]
external_interface = "eth0"
state_dir = "state"

[pools.lan]
network = "198.51.100.0/24"
interface = "jnetbr9"
gateway = "198.51.100.1"
"#;

struct Fixture {
    dir: tempfile::TempDir,
    host: Rc<FakeHost>,
    engine: Engine,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jnet.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let host = Rc::new(FakeHost::new());
    let engine = Engine::open(&Options {
        config: Some(config),
        state_dir: None,
        lock_timeout: Duration::from_secs(2),
        facts_only: false,
        one_shot: false,
    })
    .unwrap()
    .with_host(host.clone());
    Fixture { dir, host, engine }
}

fn jn(s: &str) -> JailName {
    JailName::new(s).unwrap()
}

fn pool(e: &Engine, jail: &str) {
    e.assign(&jn(jail), &AssignRequest::Pool(PoolName::new("lan").unwrap()))
        .unwrap();
}

#[test]
fn a_jails_whole_life_through_the_api() {
    let f = fixture();
    let e = &f.engine;
    let www = jn("www");
    let r = e
        .assign(&www, &AssignRequest::Pool(PoolName::new("lan").unwrap()))
        .unwrap();
    assert_eq!(
        (
            r.now.mode,
            r.now.address.map(|a| a.to_string()),
            r.was.is_none(),
            r.unchanged
        ),
        (Mode::Dedicated, Some("198.51.100.2".to_string()), true, false),
        "the gateway .1 is never handed out"
    );
    let x: Expose = "tcp/8080:80".parse().unwrap();
    let r = e.expose(&www, x).unwrap();
    assert!(!r.already);
    assert!(e.expose(&www, x).unwrap().already, "a second expose changes nothing");

    let rendered = e.pf_render(Some(&www), Syntax::Nft).unwrap();
    let text = rendered[0].text.as_deref().unwrap();
    assert!(text.contains("198.51.100.2"), "{text}");

    let s = e.run(Verb::Start, &Targets::Named(vec![www.clone()])).unwrap();
    assert_eq!(s.jails[0].outcome, JailResult::Started, "{s:?}");
    let held = f.host.snapshot();
    assert!(held.jails.contains_key(&www) && held.networks.contains_key(&www));
    assert!(held.rules[&www].contains("198.51.100.2"));

    let rows = e.status(&StatusFilter::Active).unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.name.as_str(), r.state.as_str()))
            .collect::<Vec<_>>(),
        [("www", "running")]
    );
    let st = e.pf_status().unwrap();
    assert_eq!(st.anchors.len(), 1);
    assert_eq!(st.anchors[0].state, State::InSync, "{:?}", st.anchors[0]);
    assert_eq!(st.anchors[0].phase, Phase::Running);

    // Releasing a running jail is refused and changes nothing.
    assert!(matches!(e.release(&www, None), Err(Error::Data(_))));
    assert!(e.list().unwrap().jails[0].assignment.address.is_some());

    let s = e.run(Verb::Stop, &Targets::All).unwrap();
    assert_eq!(s.jails[0].outcome, JailResult::Stopped, "{s:?}");
    assert!(f.host.snapshot().is_empty(), "{:?}", f.host.snapshot());
    let r = e.release(&www, None).unwrap();
    assert_eq!(
        r.released.and_then(|h| h.address).map(|a| a.to_string()).as_deref(),
        Some("198.51.100.2")
    );
    assert!(e.list().unwrap().jails.is_empty());
}

#[test]
fn a_plan_changes_nothing_and_the_host_plan_previews_addresses() {
    let f = fixture();
    let e = &f.engine;
    pool(e, "db");
    let inventory = f.dir.path().join("state/inventory");
    let before = std::fs::read(&inventory).unwrap();
    let p = e.plan(&jn("db"), false).unwrap();
    assert!(!p.plan.steps.is_empty());
    assert!(
        f.host.take_calls().iter().all(|c| !c.starts_with("create")),
        "planning applies nothing"
    );
    let all = e.plan_host().unwrap();
    assert_eq!(all.jails.len(), 1);
    assert_eq!(all.jails[0].address.as_deref(), Some("198.51.100.2"));
    assert_eq!(
        before,
        std::fs::read(&inventory).unwrap(),
        "plans never write the inventory"
    );
    assert!(f.host.snapshot().is_empty());
}

#[test]
fn an_exposure_of_a_taken_host_port_is_refused_and_not_recorded() {
    let f = fixture();
    let e = &f.engine;
    pool(e, "a");
    pool(e, "b");
    e.expose(&jn("a"), "tcp/8080:80".parse().unwrap()).unwrap();
    let err = e.expose(&jn("b"), "tcp/8080:81".parse().unwrap()).unwrap_err();
    assert!(matches!(err, Error::Data(_)), "{err}");
    let list = e.list().unwrap();
    let b = list.jails.iter().find(|r| r.assignment.jail == "b").unwrap();
    assert!(b.assignment.expose.is_empty(), "{:?}", b.assignment);
}
