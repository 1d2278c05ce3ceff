//! jail(8)'s per-command settings — `exec.clean`, `exec.jail_user`,
//! `exec.system_user`, `exec.system_jail_user`, `exec.fib`,
//! `exec.consolelog`, `exec.timeout` — as one value ([`ExecOptions`]), what
//! they mean for one command (which account, which environment, where the
//! output goes: [`prepare`]), and the small runner both host adapters use to
//! start such a command and wait for it within its timeout ([`run`]).
//!
//! The rules follow usr.sbin/jail/command.c `run_command()` (freebsd-src
//! 2a178238; FreeBSD main e7646b05 l.649-782) and jail(8) (FreeBSD main
//! e7646b05 `usr.sbin/jail/jail.8` l.780-816):
//! - exec.start, exec.stop (and `command`) run in the jail, every other hook
//!   on the host (`injail = comparam == IP_EXEC_START || IP_COMMAND ||
//!   IP_EXEC_STOP`);
//! - the user is exec.jail_user for in-jail commands, exec.system_user for
//!   host ones; exec.system_jail_user looks exec.jail_user up in the host's
//!   passwd(5) instead of the jail's;
//! - exec.consolelog and exec.fib apply to in-jail commands only;
//! - exec.timeout applies to every command.
//!
//! What jnet does differently, on purpose:
//! - accounts come from `<root>/etc/passwd` and `<root>/etc/group`, read by
//!   jnet before the fork (a forked child of a threaded process may not call
//!   getpwnam(3)); users known only to NSS (LDAP, NIS) are not found;
//! - login.conf(5) is not read: jail(8)'s setusercontext(3) also applies
//!   the login class's PATH, umask, resource limits and `setenv`. With
//!   exec.clean jnet sets PATH to jail(8)'s own fallback `/bin:/usr/bin`
//!   (command.c `setenv("PATH", "/bin:/usr/bin", 0)`), TERM from jnet's
//!   environment, and USER, HOME, SHELL from the account;
//! - the consolelog file is created mode 0600 (jail(8): DEFFILEMODE, 0666
//!   less the umask) and its last component may not be a symbolic link;
//! - on timeout the command's whole process group is killed (jail(8) only
//!   stops waiting and fails the jail, command.c `next_proc`/`finish_command`
//!   "timed out").
//!
//! The per-platform parts (setfib(2), jail_attach(2), setns(2), and the
//! uid/gid switch in the child) are the adapters' `sys` modules.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::os::OsError;

pub use crate::core::model::ExecOptions;

/// A passwd(5) account with the groups initgroups(3) would give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the primary group, then every group(5) entry
    /// that lists the user.
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: String,
}

/// The ids a child switches to (the adapters' pre-exec hooks apply them:
/// setgroups, setgid, then setuid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl From<&Account> for Creds {
    fn from(a: &Account) -> Creds {
        Creds {
            uid: a.uid,
            gid: a.gid,
            groups: a.groups.clone(),
        }
    }
}

/// `cwd` as a C string for a pre-exec hook.
pub fn cwd_cstring(p: &Prepared) -> Result<Option<std::ffi::CString>, OsError> {
    use std::os::unix::ffi::OsStrExt;
    match &p.cwd {
        None => Ok(None),
        Some(d) => std::ffi::CString::new(d.as_os_str().as_bytes())
            .map(Some)
            .map_err(|_| OsError::Unsupported(format!("exec: directory {} contains NUL", d.display()))),
    }
}

/// Which account to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    Name(&'a str),
    /// jail(8) uses getpwuid(getuid()) when exec.clean is set without a user.
    Uid(u32),
}

impl std::fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Name(n) => write!(f, "user {n}"),
            Who::Uid(u) => write!(f, "uid {u}"),
        }
    }
}

/// Finds `who` in passwd(5) text (`name:pw:uid:gid:gecos:home:shell`, or
/// the 10-field master.passwd form) and its groups in group(5) text.
/// Comment lines and NIS `+`/`-` entries are skipped.
pub fn find_account(passwd: &str, group: &str, who: Who<'_>) -> Result<Account, String> {
    for line in passwd.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let (home, shell) = match f.len() {
            7 => (f[5], f[6]),
            10 => (f[8], f[9]),
            _ => continue,
        };
        let (Ok(uid), Ok(gid)) = (f[2].parse::<u32>(), f[3].parse::<u32>()) else {
            continue;
        };
        let hit = match who {
            Who::Name(n) => f[0] == n,
            Who::Uid(u) => uid == u,
        };
        if hit {
            return Ok(Account {
                name: f[0].to_string(),
                uid,
                gid,
                groups: groups_of(group, f[0], gid),
                home: PathBuf::from(home),
                shell: shell.to_string(),
            });
        }
    }
    Err(format!("{who}: no such user"))
}

/// The primary group, then every group(5) entry naming `user` as member.
fn groups_of(group: &str, user: &str, primary: u32) -> Vec<u32> {
    let mut out = vec![primary];
    for line in group.lines() {
        let f: Vec<&str> = line.trim_end().split(':').collect();
        if f.len() != 4 || f[0].starts_with('#') {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else { continue };
        if f[3].split(',').any(|m| m.trim() == user) && !out.contains(&gid) {
            out.push(gid);
        }
    }
    out
}

/// The environment of a command: whether to start from an empty one, and
/// what to set on top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPlan {
    pub clear: bool,
    pub set: Vec<(String, String)>,
}

/// The environment jail(8) gives a command (see the module doc for what
/// login.conf would add): with `clean`, an empty one with PATH
/// `/bin:/usr/bin` and TERM (when set); with an account, USER, HOME and
/// SHELL from it (an empty shell is /bin/sh, command.c `_PATH_BSHELL`).
pub fn environment(clean: bool, term: Option<&str>, account: Option<&Account>) -> EnvPlan {
    let mut set = Vec::new();
    if clean {
        set.push(("PATH".to_string(), "/bin:/usr/bin".to_string()));
        if let Some(t) = term {
            set.push(("TERM".to_string(), t.to_string()));
        }
    }
    if let Some(a) = account {
        set.push(("USER".to_string(), a.name.clone()));
        set.push(("HOME".to_string(), a.home.display().to_string()));
        let shell = if a.shell.is_empty() { "/bin/sh" } else { &a.shell };
        set.push(("SHELL".to_string(), shell.to_string()));
    }
    EnvPlan { clear: clean, set }
}

/// Everything a command needs besides where it runs.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The account to switch to in the child (None: stay jnet's).
    pub account: Option<Account>,
    pub env: EnvPlan,
    /// Directory to change to in the child once it is in place (exec.clean:
    /// the account's home, as jail(8) does).
    pub cwd: Option<PathBuf>,
    /// The consolelog file for stdout and stderr.
    pub output: Option<File>,
    pub timeout: Option<Duration>,
}

/// Reads the account `who` from `<root>/etc/passwd` and `<root>/etc/group`.
/// why: a jail's root is the jail's own; a symbolic link in it must not
/// make jnet read a host file, so the resolved files must stay under root.
pub fn read_account(root: &Path, who: Who<'_>, jail: &str) -> Result<Account, OsError> {
    let read = |rel: &str| -> Result<Option<String>, OsError> {
        let p = root.join(rel);
        let canon_root = root.canonicalize().map_err(|e| OsError::Sys {
            op: format!("jail {jail}: look up {who}: {}", root.display()),
            source: e,
        })?;
        match p.canonicalize() {
            Ok(c) if c.starts_with(&canon_root) => std::fs::read_to_string(&c).map(Some).map_err(|e| OsError::Sys {
                op: format!("jail {jail}: look up {who}: read {}", p.display()),
                source: e,
            }),
            Ok(_) => Err(OsError::Unsupported(format!(
                "jail {jail}: look up {who}: {} leads outside {}",
                p.display(),
                root.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OsError::Sys {
                op: format!("jail {jail}: look up {who}: {}", p.display()),
                source: e,
            }),
        }
    };
    let passwd = read("etc/passwd")?.ok_or_else(|| {
        OsError::Unsupported(format!(
            "jail {jail}: look up {who}: {} does not exist",
            root.join("etc/passwd").display()
        ))
    })?;
    let group = read("etc/group")?.unwrap_or_default();
    find_account(&passwd, &group, who)
        .map_err(|e| OsError::Unsupported(format!("jail {jail}: {e} in {}", root.join("etc/passwd").display())))
}

/// Opens exec.consolelog for appending, creating it 0600; refuses a
/// relative path and a symbolic link as last component (O_NOFOLLOW).
pub fn open_consolelog(path: &Path, jail: &str) -> Result<File, OsError> {
    use std::os::unix::fs::OpenOptionsExt;
    if !path.is_absolute() {
        return Err(OsError::Unsupported(format!(
            "jail {jail}: exec.consolelog {}: not an absolute path",
            path.display()
        )));
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| OsError::Sys {
            op: format!("jail {jail}: exec.consolelog: open {}", path.display()),
            source: e,
        })
}

/// Resolves `opts` for one command of jail `jail`: the account (looked up
/// under `jail_root` for in-jail commands unless exec.system_jail_user,
/// else under `/`), environment, directory, output file and timeout.
pub fn prepare(opts: &ExecOptions, in_jail: bool, jail_root: &Path, jail: &str) -> Result<Prepared, OsError> {
    let user = opts.user_for(in_jail);
    let account = if user.is_some() || opts.clean {
        let root = if opts.lookup_in_jail(in_jail) {
            jail_root
        } else {
            Path::new("/")
        };
        let who = match user {
            Some(u) => Who::Name(u),
            None => Who::Uid(nix::unistd::getuid().as_raw()),
        };
        Some(read_account(root, who, jail)?)
    } else {
        None
    };
    let term = std::env::var("TERM").ok();
    let env = environment(opts.clean, term.as_deref(), account.as_ref());
    let cwd = if opts.clean {
        account.as_ref().map(|a| a.home.clone())
    } else {
        None
    };
    let output = match opts.consolelog_for(in_jail) {
        Some(p) => Some(open_consolelog(p, jail)?),
        None => None,
    };
    Ok(Prepared {
        // why: switching to the account jnet already runs as changes
        // nothing, and a non-root jnet could not call setgroups(2).
        account: account.filter(|a| user.is_some() || a.uid != nix::unistd::getuid().as_raw()),
        env,
        cwd,
        output,
        timeout: opts.timeout.filter(|t| !t.is_zero()),
    })
}

/// Applies the environment and output of `p` to `cmd` (the account and
/// directory are the adapter's pre-exec hook's: they must follow the
/// namespace or jail switch).
pub fn apply(cmd: &mut Command, p: &Prepared) -> Result<(), OsError> {
    if p.env.clear {
        cmd.env_clear();
    }
    cmd.envs(p.env.set.iter().map(|(k, v)| (k, v)));
    if let Some(f) = &p.output {
        let dup = |f: &File| {
            f.try_clone().map_err(|e| OsError::Sys {
                op: "exec.consolelog: duplicate descriptor".into(),
                source: e,
            })
        };
        cmd.stdout(dup(f)?);
        cmd.stderr(dup(f)?);
    }
    if p.timeout.is_some() {
        // why: the timeout kills the command's whole group, so that what it
        // started goes too; without a timeout the command stays in jnet's
        // group and gets the terminal's signals as jail(8)'s children do.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    Ok(())
}

/// Spawns `cmd` and waits for it; `what` names it in errors. With a
/// timeout, a command still running at the deadline has its process group
/// killed (SIGKILL) and the call fails with [`OsError::TimedOut`]. Returns
/// the exit code (128 + signal number when killed by a signal).
pub fn run(cmd: &mut Command, timeout: Option<Duration>, what: &str) -> Result<i32, OsError> {
    use std::os::unix::process::ExitStatusExt;
    let mut child = cmd.spawn().map_err(|source| OsError::Sys {
        op: what.to_string(),
        source,
    })?;
    let status = match timeout {
        None => child.wait(),
        Some(limit) => {
            let deadline = Instant::now() + limit;
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Ok(s),
                    Ok(None) if Instant::now() >= deadline => {
                        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                        let _ = child.wait();
                        return Err(OsError::TimedOut {
                            command: what.to_string(),
                            secs: limit.as_secs(),
                        });
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => break Err(e),
                }
            }
        }
    }
    .map_err(|source| OsError::Sys {
        op: format!("wait for {what}"),
        source,
    })?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "# comment\nroot:*:0:0:Charlie &:/root:/bin/csh\n+nis:*:::::\n\
        www:*:80:80:World Wide Web Owner:/nonexistent:/usr/sbin/nologin\n\
        app:$6$x:1001:1001::/home/app:\n";
    const GROUP: &str = "wheel:*:0:root\nwww:*:80:\nstaff:*:20:app,other\napp:*:1001:\nlog:*:30: app \n";

    #[test]
    fn accounts_and_groups() {
        let a = find_account(PASSWD, GROUP, Who::Name("app")).unwrap();
        assert_eq!((a.uid, a.gid), (1001, 1001));
        assert_eq!(a.groups, [1001, 20, 30]);
        assert_eq!(a.home, PathBuf::from("/home/app"));
        assert_eq!(a.shell, "");
        let r = find_account(PASSWD, GROUP, Who::Uid(0)).unwrap();
        assert_eq!((r.name.as_str(), r.groups.as_slice()), ("root", &[0][..]));
        // master.passwd form: class, change, expire before gecos.
        let m = find_account("db:*:88:88::0:0:DB:/var/db:/bin/sh\n", "", Who::Name("db")).unwrap();
        assert_eq!((m.home.to_str(), m.shell.as_str()), (Some("/var/db"), "/bin/sh"));
        let e = find_account(PASSWD, GROUP, Who::Name("nis")).unwrap_err();
        assert_eq!(e, "user nis: no such user");
    }

    #[test]
    fn environments() {
        let a = find_account(PASSWD, GROUP, Who::Name("app")).unwrap();
        let e = environment(true, Some("xterm"), Some(&a));
        assert!(e.clear);
        assert_eq!(
            e.set,
            [
                ("PATH", "/bin:/usr/bin"),
                ("TERM", "xterm"),
                ("USER", "app"),
                ("HOME", "/home/app"),
                ("SHELL", "/bin/sh")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let e = environment(false, Some("xterm"), Some(&a));
        assert!(!e.clear && e.set.len() == 3 && e.set[0].0 == "USER");
        assert_eq!(environment(false, None, None), EnvPlan::default());
    }

    #[test]
    fn per_command_selection() {
        let o = ExecOptions {
            jail_user: Some("www".into()),
            system_user: Some("op".into()),
            fib: Some(2),
            consolelog: Some("/var/log/j.log".into()),
            ..Default::default()
        };
        assert_eq!(o.user_for(true), Some("www"));
        assert_eq!(o.user_for(false), Some("op"));
        assert!(o.lookup_in_jail(true) && !o.lookup_in_jail(false));
        assert_eq!((o.fib_for(true), o.fib_for(false)), (Some(2), None));
        assert!(o.consolelog_for(false).is_none() && o.consolelog_for(true).is_some());
        let s = ExecOptions {
            system_jail_user: true,
            ..o
        };
        assert!(!s.lookup_in_jail(true));
    }

    #[test]
    fn account_files_must_stay_under_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("j");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
        assert_eq!(read_account(&root, Who::Name("www"), "j").unwrap().uid, 80);
        let outside = d.path().join("passwd");
        std::fs::write(&outside, PASSWD).unwrap();
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc/passwd")).unwrap();
        let e = read_account(&root, Who::Name("www"), "j").unwrap_err().to_string();
        assert!(e.contains("leads outside"), "{e}");
        let e = read_account(&d.path().join("none"), Who::Name("www"), "j")
            .unwrap_err()
            .to_string();
        assert!(e.contains("jail j"), "{e}");
    }

    #[test]
    fn consolelog_is_appended_created_private_and_never_followed() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("console.log");
        open_consolelog(&p, "j").unwrap().write_all(b"a\n").unwrap();
        open_consolelog(&p, "j").unwrap().write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\nb\n");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let l = d.path().join("link.log");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert!(open_consolelog(&l, "j").is_err());
        assert!(open_consolelog(Path::new("rel.log"), "j").is_err());
    }

    /// A real process: the timeout kills `sleep 30` and what it started
    /// within bounds, and fails the command.
    #[test]
    fn timeout_kills_the_command_group() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("pid");
        let p = Prepared {
            timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("sleep 30 & echo $! > {}; wait", pidfile.display()));
        apply(&mut cmd, &p).unwrap();
        let t0 = Instant::now();
        let e = run(&mut cmd, p.timeout, "sh -c sleep").unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert!(matches!(e, OsError::TimedOut { .. }), "{e}");
        assert!(e.to_string().contains("exec.timeout"), "{e}");
        // The background sleep was in the group and is gone too.
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() {
            assert!(Instant::now() < deadline, "sleep {pid} survived the timeout");
            std::thread::sleep(Duration::from_millis(20));
        }
        // A command that ends in time is unaffected.
        let mut ok = Command::new("/bin/sh");
        ok.args(["-c", "exit 3"]);
        apply(&mut ok, &p).unwrap();
        assert_eq!(run(&mut ok, p.timeout, "sh").unwrap(), 3);
    }

    /// A real process: exec.clean drops jnet's environment; consolelog
    /// receives stdout and stderr.
    #[test]
    fn clean_environment_and_consolelog_reach_the_command() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("c.log");
        let p = Prepared {
            env: environment(true, None, None),
            output: Some(open_consolelog(&log, "j").unwrap()),
            ..Default::default()
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "echo out=${JNET_TEST_SECRET:-unset} PATH=$PATH; echo err >&2"])
            .env("JNET_TEST_SECRET", "leak");
        apply(&mut cmd, &p).unwrap();
        assert_eq!(run(&mut cmd, None, "sh").unwrap(), 0);
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "out=unset PATH=/bin:/usr/bin\nerr\n"
        );
    }
}
