//! Crash torture of the file store through the built binary: `jnet assign`,
//! `release` and `import` are SIGKILLed at deterministic pseudo-random
//! moments, at least 1,000 times, and after every kill the inventory must
//! read back (through `Store::read`, the path every reader takes) as either
//! the state before the command or the state after it, never damaged, with
//! no address held by two jails, and the next command must work.
//!
//! Kill delays are spread over the measured runtime of an unkilled command
//! (0 to 1.3 times the second fastest of six normal runs), so kills land before
//! the lock, during the read, between the write and the fsync, after the
//! rename and after exit. A quarter of the commands run with
//! `JNET_JOURNAL_MAX_BYTES=1` (a test hook of the test build) so that their
//! change is a compaction by rename rather than a journal append; `import`
//! is always a compaction of several jails at once, which must appear all
//! or nothing.
//!
//! What it does not cover: power loss (a SIGKILL leaves the page cache, so
//! fsync ordering is not exercised), and the Postgres backend.
//!
//! `JNET_TORTURE_SEED` and `JNET_TORTURE_KILLS` (test-only) change the seed
//! and the number of kills for a longer local run; the defaults are fixed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jnet::store::Store;

const CONFIG: &str = r#"
[host]
external_interface = "eth0"
state_dir = "state"
jail_conf = "jail.conf"

[pools.lan]
network = "192.0.2.0/24"
interface = "eth0"
ranges = ["192.0.2.10-192.0.2.200"]
gateway = "192.0.2.1"
"#;

/// jail.conf for `import`: three jails with static addresses inside the
/// pool's ranges (which `assign --pool` therefore never hands out).
const JAIL_CONF: &str = "path = \"/jails/$name\";\n\
    s1 { ip4.addr = \"eth0|192.0.2.150/24\"; }\n\
    s2 { ip4.addr = \"eth0|192.0.2.151/24\"; }\n\
    s3 { ip4.addr = \"eth0|192.0.2.152/24\"; }\n";

const STATIC: [(&str, [u8; 4]); 3] = [
    ("s1", [192, 0, 2, 150]),
    ("s2", [192, 0, 2, 151]),
    ("s3", [192, 0, 2, 152]),
];

/// Jail names the commands pick from (and the static ones, which `release`
/// also removes so that the next `import` has work to do).
const NAMES: usize = 24;

/// The part of the inventory the torture checks: jail -> address (None for
/// an inherit jail).
type State = BTreeMap<String, Option<Ipv4Addr>>;

/// xorshift64*: a fixed seed gives the same sequence of commands and kill
/// delays on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
enum Op {
    Assign(String),
    Release(String),
    Import,
}

impl Op {
    fn args(&self) -> Vec<String> {
        match self {
            Op::Assign(j) => vec!["assign".into(), j.clone(), "--pool".into(), "lan".into()],
            Op::Release(j) => vec!["release".into(), j.clone()],
            Op::Import => vec!["import".into()],
        }
    }
}

struct Env {
    _dir: tempfile::TempDir,
    cfg: PathBuf,
    state: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jnet.toml"), CONFIG).unwrap();
        std::fs::write(dir.path().join("jail.conf"), JAIL_CONF).unwrap();
        Env {
            cfg: dir.path().join("jnet.toml"),
            state: dir.path().join("state"),
            _dir: dir,
        }
    }

    fn command(&self, op: &Op, compact: bool) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_jnet"));
        c.arg("-c")
            .arg(&self.cfg)
            .args(op.args())
            .env_remove("JNET_CONFIG")
            .env_remove("JNET_STATE_DIR")
            .env_remove("JNET_TEST_WRITE_PAUSE_MS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if compact {
            c.env("JNET_JOURNAL_MAX_BYTES", "1");
        } else {
            c.env_remove("JNET_JOURNAL_MAX_BYTES");
        }
        c
    }

    /// Runs `op` to completion; it must succeed.
    fn run(&self, op: &Op, compact: bool) -> Duration {
        let t = Instant::now();
        let o = self.command(op, compact).output().unwrap();
        let took = t.elapsed();
        assert!(
            o.status.success(),
            "jnet {:?} failed: {:?}\n{}",
            op.args(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        took
    }

    /// The inventory as every reader sees it; damage fails the test.
    fn read(&self, context: &str) -> State {
        let inv = Store::new(&self.state, Duration::from_secs(5))
            .read()
            .unwrap_or_else(|e| panic!("DAMAGED INVENTORY {context}: {e}\n{}", dump(&self.state)));
        let state: State = inv
            .jails
            .iter()
            .map(|(n, r)| (n.as_str().to_string(), r.address()))
            .collect();
        let mut seen = BTreeMap::new();
        for (jail, a) in &state {
            if let Some(a) = a {
                if let Some(other) = seen.insert(*a, jail) {
                    panic!(
                        "ADDRESS HELD TWICE {context}: {a} by {other} and {jail}\n{}",
                        dump(&self.state)
                    );
                }
            }
        }
        state
    }
}

fn dump(state: &Path) -> String {
    let inv = std::fs::read(state.join("inventory")).unwrap_or_default();
    format!("--- inventory ---\n{}", String::from_utf8_lossy(&inv))
}

fn lan(a: Ipv4Addr) -> bool {
    (u32::from(Ipv4Addr::new(192, 0, 2, 10))..=u32::from(Ipv4Addr::new(192, 0, 2, 200))).contains(&u32::from(a))
}

/// Whether `now` is a state `op` may leave after starting from `old`
/// (besides `old` itself).
fn is_new_state(op: &Op, old: &State, now: &State) -> bool {
    match op {
        Op::Assign(j) => {
            let (mut o, mut n) = (old.clone(), now.clone());
            let (had, got) = (o.remove(j), n.remove(j));
            o == n && had.is_none() && matches!(got, Some(Some(a)) if lan(a) && !old.values().any(|v| *v == Some(a)))
        }
        Op::Release(j) => {
            let mut o = old.clone();
            o.remove(j).is_some() && o == *now
        }
        Op::Import => {
            let mut o = old.clone();
            for (j, a) in STATIC {
                o.insert(j.to_string(), Some(Ipv4Addr::from(a)));
            }
            o == *now
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn sigkill_at_random_points_leaves_old_or_new_inventory() {
    let seed = env_u64("JNET_TORTURE_SEED", 0x6a6e_6574_2d6b_696c);
    let kills = env_u64("JNET_TORTURE_KILLS", 1000);
    let e = Env::new();
    let started = Instant::now();

    // Normal runs: the runtime the kill delays are spread over, and a
    // starting inventory with a journal and the static jails.
    let mut runs = vec![];
    for (i, op) in [
        Op::Assign("j0".into()),
        Op::Assign("j1".into()),
        Op::Import,
        Op::Release("j1".into()),
        Op::Assign("j1".into()),
        Op::Release("s2".into()),
    ]
    .iter()
    .enumerate()
    {
        runs.push(e.run(op, i % 2 == 1));
    }
    runs.sort();
    // The second fastest: the first run creates the state directory, and
    // on a loaded machine the slow runs are mostly waiting for a core.
    let typical = runs[1];
    let window = typical.mul_f64(1.3).as_micros() as u64;
    println!("seed {seed:#x}, {kills} kills, delays 0..{window} us (normal runs {runs:?})");

    let mut rng = Rng(seed | 1);
    let (mut before, mut after, mut exited, mut killed_after) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..kills {
        let old = e.read(&format!("before kill {i}"));
        let j = format!("j{}", rng.below(NAMES as u64));
        let op = match rng.below(10) {
            0..=4 if !old.contains_key(&j) => Op::Assign(j),
            0..=7 => {
                // Release a jail that exists (a static one now and then), so
                // most releases have something to remove.
                let held: Vec<&String> = old.keys().collect();
                if held.is_empty() {
                    Op::Assign(j)
                } else {
                    Op::Release(held[rng.below(held.len() as u64) as usize].clone())
                }
            }
            _ => Op::Import,
        };
        let compact = rng.below(4) == 0;
        let delay = Duration::from_micros(rng.below(window + 1));
        let mut child = e.command(&op, compact).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; an error means it already exited
        let status = child.wait().unwrap();
        let context = format!(
            "after kill {i} ({:?}, compact={compact}, {delay:?}, {status:?})",
            op.args()
        );
        if status.code().is_some() {
            exited += 1;
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            assert!(status.success(), "command failed {context}:\n{err}");
        }
        let now = e.read(&context);
        if status.success() {
            // Ran to the end: its change is there (for an import with
            // nothing to add, the new state is the old one).
            assert!(
                is_new_state(&op, &old, &now),
                "EXITED 0 WITHOUT ITS CHANGE {context}\nold: {old:?}\nnow: {now:?}\n{}",
                dump(&e.state)
            );
            after += 1;
        } else if now == old {
            before += 1;
        } else if is_new_state(&op, &old, &now) {
            after += 1;
            killed_after += 1;
        } else {
            panic!(
                "NEITHER OLD NOR NEW STATE {context}\nold: {old:?}\nnow: {now:?}\n{}",
                dump(&e.state)
            );
        }
    }
    // The next writer repairs whatever the last kill left (a torn tail, a
    // temp file) and works.
    e.run(&Op::Assign("final".into()), false);
    let end = e.read("at the end");
    assert!(end.contains_key("final"));
    let temps: Vec<_> = std::fs::read_dir(&e.state)
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with(".inventory.tmp"))
        .collect();
    assert!(temps.is_empty(), "stale temp files left: {temps:?}");
    println!(
        "{kills} kills in {:?}: {before} left the old state, {after} the new one \
         ({killed_after} killed after their change, {exited} had already exited)",
        started.elapsed()
    );
    // The delays must really spread over the command's run: some kills
    // land before its change and some after.
    assert!(
        before >= kills / 100 && killed_after >= kills / 100,
        "kills not spread: {before} old, {killed_after} killed after the change"
    );
}

/// The checks above can fail: a damaged inventory, an address held twice
/// and a state that is neither old nor new are each caught.
#[test]
fn the_checker_catches_damage_and_wrong_states() {
    let e = Env::new();
    e.run(&Op::Assign("a".into()), false);
    e.run(&Op::Assign("b".into()), false);
    let inv = e.state.join("inventory");
    let good = std::fs::read(&inv).unwrap();
    let text = String::from_utf8(good.clone()).unwrap();
    // A complete journal line whose checksum no longer matches: damage.
    let bad = text.replacen("192.0.2.11", "192.0.2.12", 1);
    assert_ne!(bad, text, "{text}");
    std::fs::write(&inv, &bad).unwrap();
    let r = std::panic::catch_unwind(|| e.read("test"));
    assert!(r.is_err(), "damaged inventory not caught:\n{bad}");
    // The same address twice, in a well-formed base.
    std::fs::write(
        &inv,
        "jnet-inventory 1\njail a mode=dedicated address=192.0.2.10 pool=lan interface=eth0 phase=defined\n\
         jail b mode=dedicated address=192.0.2.10 pool=lan interface=eth0 phase=defined\n",
    )
    .unwrap();
    let r = std::panic::catch_unwind(|| e.read("test"));
    assert!(r.is_err(), "address held twice not caught");
    std::fs::write(&inv, &good).unwrap();
    let old = e.read("test");

    let a = |x: u8| Some(Ipv4Addr::new(192, 0, 2, x));
    let with = |pairs: &[(&str, Option<Ipv4Addr>)]| -> State {
        let mut s = old.clone();
        for (j, v) in pairs {
            s.insert(j.to_string(), *v);
        }
        s
    };
    let assign = Op::Assign("c".into());
    assert!(is_new_state(&assign, &old, &with(&[("c", a(12))])));
    assert!(!is_new_state(&assign, &old, &old), "no change is not the new state");
    assert!(
        !is_new_state(&assign, &old, &with(&[("c", a(10))])),
        "an address already held"
    );
    assert!(
        !is_new_state(&assign, &old, &with(&[("c", a(201))])),
        "outside the ranges"
    );
    assert!(
        !is_new_state(&assign, &old, &with(&[("c", a(12)), ("d", a(13))])),
        "a second change"
    );
    let release = Op::Release("a".into());
    let mut gone = old.clone();
    gone.remove("a");
    assert!(is_new_state(&release, &old, &gone));
    gone.remove("b");
    assert!(!is_new_state(&release, &old, &gone), "released more than asked");
    let all = with(&[("s1", a(150)), ("s2", a(151)), ("s3", a(152))]);
    assert!(is_new_state(&Op::Import, &old, &all));
    assert!(
        !is_new_state(&Op::Import, &old, &with(&[("s1", a(150))])),
        "a partial import"
    );
}
