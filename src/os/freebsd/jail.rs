//! Safe jail(2) operations: create (jail_set with JAIL_CREATE), look up by
//! name and enumerate (jail_get, `lastjid`), remove (jail_remove) and run a
//! command inside (fork, jail_attach, exec — what jexec(8) does).
//!
//! Parameters are validated and encoded by `params` and `iov`; the syscalls are
//! in `sys`. Errors carry the kernel's `errmsg` text when it wrote one (as
//! jail(8) and libjail report them), else the errno. This module does not
//! add interface aliases (jail(2) does not either) and runs no exec.* hooks.

use std::ffi::CString;

use nix::errno::Errno;

use super::iov::{JailInfo, JailIov};
use super::params as plan;
use super::sys;
use super::FreeBsdError;
use crate::core::names::JailName;
use crate::os::exec::{self, ExecOptions};
use crate::os::{JailSpec, OsError};

/// Addresses read per jail on the first try; grown when a jail has more.
const IP4_SLOTS: usize = 16;
/// Upper bound for the growth (security.jail.jail_max_af_ips defaults to 255).
const IP4_SLOTS_MAX: usize = 65536;

fn jail_err(op: &'static str, jail: &str, iov: &JailIov, errno: Errno) -> FreeBsdError {
    FreeBsdError::Jail {
        op,
        jail: jail.to_string(),
        message: iov.errmsg(),
        errno,
    }
}

/// Loads the filesystem module each `allow.mount.<fs>` parameter needs, as
/// libjail's kldload_param() does (see `plan::kld_modules_for_param`): the
/// name as given, then without "no" if that was not found; "already
/// loaded" is success. A module that cannot be loaded is logged, and
/// jail_set then names the unknown parameter (F4).
fn load_param_modules(spec: &JailSpec) {
    for (name, _) in &spec.params {
        for module in plan::kld_modules_for_param(name) {
            let Ok(c) = CString::new(module.as_str()) else { break };
            match sys::kld_load(&c) {
                Ok(_) => {
                    tracing::info!(jail = %spec.name, param = %name, %module, "kernel module loaded");
                    break;
                }
                Err(Errno::EEXIST) => break,
                Err(e) => tracing::debug!(jail = %spec.name, param = %name, %module, error = %e, "kldload"),
            }
        }
    }
}

/// Creates the jail described by `spec`; returns its jid.
pub fn create(spec: &JailSpec) -> Result<i32, FreeBsdError> {
    load_param_modules(spec);
    let mut iov = JailIov::new(plan::create_params(spec)?);
    tracing::debug!(jail = %spec.name, params = ?iov.params().iter().map(|p| p.name()).collect::<Vec<_>>(), "jail_set");
    let jid =
        sys::jail_set(&mut iov, libc::JAIL_CREATE).map_err(|e| jail_err("create", spec.name.as_str(), &iov, e))?;
    tracing::info!(jail = %spec.name, jid, "jail created");
    Ok(jid)
}

/// Clears `persist` on the running jail `name` (JAIL_UPDATE with `jid` +
/// `nopersist`, as jail(8) does after exec.poststart; see
/// `plan::clear_persist_params`), so the kernel removes the jail when its
/// last process exits. `false` when the jail is not running.
pub fn clear_persist(name: &JailName) -> Result<bool, FreeBsdError> {
    let Some(jid) = find(name)? else {
        return Ok(false);
    };
    let mut iov = JailIov::new(plan::clear_persist_params(jid));
    sys::jail_set(&mut iov, libc::JAIL_UPDATE).map_err(|e| jail_err("clear persist on", name.as_str(), &iov, e))?;
    tracing::info!(jail = %name, jid, "persist cleared");
    Ok(true)
}

/// The jid of the running jail `name`, `None` when there is none.
pub fn find(name: &JailName) -> Result<Option<i32>, FreeBsdError> {
    let mut iov = JailIov::get_by_name(name);
    match sys::jail_get(&mut iov, 0) {
        Ok(jid) => Ok(Some(jid)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(jail_err("look up", name.as_str(), &iov, e)),
    }
}

/// Removes the jail `name`; `false` when it was not running (not an error).
pub fn remove(name: &JailName) -> Result<bool, FreeBsdError> {
    let Some(jid) = find(name)? else {
        tracing::info!(jail = %name, "jail not running; nothing to remove");
        return Ok(false);
    };
    match sys::jail_remove(jid) {
        Ok(()) => {
            tracing::info!(jail = %name, jid, "jail removed");
            Ok(true)
        }
        // The jail went away between the lookup and the removal.
        Err(Errno::EINVAL) => Ok(false),
        Err(errno) => Err(FreeBsdError::Jail {
            op: "remove",
            jail: name.to_string(),
            message: None,
            errno,
        }),
    }
}

/// Every jail the kernel reports (dying jails excluded), in jid order.
pub fn list() -> Result<Vec<JailInfo>, FreeBsdError> {
    let mut out = Vec::new();
    let mut lastjid = 0;
    let mut slots = IP4_SLOTS;
    loop {
        let mut iov = JailIov::get_next(lastjid, slots);
        match sys::jail_get(&mut iov, 0) {
            Ok(jid) => {
                out.push(iov.decode_jail(jid));
                lastjid = jid;
            }
            // No jail above `lastjid`: the end of the list.
            Err(Errno::ENOENT) => break,
            // why: EINVAL without a message is the kernel saying a value
            // buffer (ip4.addr) is too small; retry the same jail with more
            // room, as libjail does.
            Err(Errno::EINVAL) if iov.errmsg().is_none() && slots < IP4_SLOTS_MAX => slots *= 4,
            Err(e) => return Err(jail_err("list", &format!("after jid {lastjid}"), &iov, e)),
        }
    }
    Ok(out)
}

/// SIGTERM to the processes of jail `name` and a wait of up to `timeout`
/// (jail(8)'s stop.timeout phase, see `sys::terminate_jail`). A jail that
/// is not running has nothing to end: Ok(true).
pub fn terminate(name: &JailName, timeout: std::time::Duration) -> Result<bool, FreeBsdError> {
    let Some(jid) = find(name)? else { return Ok(true) };
    sys::terminate_jail(jid, timeout).map_err(|errno| FreeBsdError::Jail {
        op: "terminate the processes of",
        jail: name.to_string(),
        message: None,
        errno,
    })
}

/// Runs `argv` inside the running jail `name` with jail.conf's exec.*
/// settings `opts` (see `os::exec`) and returns its exit code. The account
/// is looked up in the jail's own passwd(5) unless exec.system_jail_user.
pub fn exec_in(name: &JailName, argv: &[String], opts: &ExecOptions) -> Result<i32, OsError> {
    let bad = |reason: &str| -> OsError {
        FreeBsdError::Exec {
            jail: name.to_string(),
            reason: reason.to_string(),
        }
        .into()
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(bad("empty command"));
    };
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(bad("an argument contains a NUL byte"));
    }
    let info = list()?
        .into_iter()
        .find(|j| j.name == name.as_str())
        .ok_or_else(|| bad("jail is not running"))?;
    let prep = exec::prepare(opts, true, &info.path, name.as_str())?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    exec::apply(&mut cmd, &prep)?;
    sys::attach_before_exec(
        &mut cmd,
        Some(info.jid),
        opts.fib_for(true),
        prep.account.as_ref().map(exec::Creds::from),
        exec::cwd_cstring(&prep)?,
    );
    tracing::debug!(jail = %name, jid = info.jid, ?argv, "exec in jail");
    exec::run(
        &mut cmd,
        prep.timeout,
        &format!("exec in jail {name}: {}", argv.join(" ")),
    )
}

/// Runs a host hook of jail `jail` (`/bin/sh -c command`) with jail.conf's
/// exec.* settings: exec.system_user, exec.clean, exec.timeout.
pub fn exec_on_host(jail: &str, command: &str, opts: &ExecOptions) -> Result<i32, OsError> {
    // why: the command is a jail.conf exec.* line from a root-owned file
    // and is sh(1) syntax by definition, as jail(8) runs it.
    let prep = exec::prepare(opts, false, std::path::Path::new("/"), jail)?;
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    exec::apply(&mut cmd, &prep)?;
    sys::attach_before_exec(
        &mut cmd,
        None,
        None,
        prep.account.as_ref().map(exec::Creds::from),
        exec::cwd_cstring(&prep)?,
    );
    tracing::debug!(jail, command, "exec on host");
    exec::run(&mut cmd, prep.timeout, &format!("/bin/sh -c {command:?}"))
}
