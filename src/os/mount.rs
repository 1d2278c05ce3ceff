//! jail(8)'s mount pseudo-parameters as data: `mount` (one fstab(5) line),
//! the lines of a `mount.fstab` file, `mount.devfs` (with `devfs_ruleset`),
//! `mount.fdescfs` and `mount.procfs`, each reduced to one [`MountEntry`];
//! the validated argument vectors of mount(8) and umount(8) for it; and the
//! check that a mount point has no symbolic link below the jail's root.
//!
//! The forms are usr.sbin/jail/command.c `run_command()` (freebsd-src
//! 2a178238; FreeBSD main e7646b05 l.467-595):
//! - `case IP_MOUNT` / `IP__MOUNT_FROM_FSTAB`: the first four blank-separated
//!   fields `spec file vfstype [options]` become `mount -t vfstype [-o
//!   options] spec file`; fewer than three fields is "missing information";
//!   the way down is `umount -t vfstype file`. Newer command.c decodes
//!   strunvis(3) escapes in the first two fields (`\040` for a blank), which
//!   jnet does for octal escapes;
//! - `case IP_MOUNT_DEVFS`: `mount -t devfs -oruleset=N . <path>/dev`, N from
//!   `devfs_ruleset` or 4 ("devfsrules_jail"), down `umount <path>/dev`;
//! - `case IP_MOUNT_FDESCFS`: `mount -t fdescfs . <path>/dev/fd`;
//! - `case IP_MOUNT_PROCFS`: `mount -t procfs . <path>/proc`;
//! - `check_path()`: the mount point is absolute and no component below the
//!   jail's path is a symbolic link.
//!
//! The order jail(8) mounts them in is usr.sbin/jail/jail.c
//! `startcommands` (mount, mount.fstab, devfs, fdescfs, procfs, before
//! exec.prestart) and the reverse in `stopcommands` (after exec.poststop);
//! the planner keeps it. Running the commands is the FreeBSD adapter's
//! (absolute paths, argv without a shell); Linux refuses these parameters.

use std::path::{Component, Path, PathBuf};

/// mount(8) and umount(8), by absolute path (command.c `_PATH_MOUNT`,
/// "/sbin/umount").
pub const MOUNT: &str = "/sbin/mount";
pub const UMOUNT: &str = "/sbin/umount";

/// jail(8)'s devfs ruleset when `devfs_ruleset` is not set (command.c
/// `case IP_MOUNT_DEVFS`: `ruleset = "4"; /* devfsrules_jail */`).
pub const DEFAULT_DEVFS_RULESET: u32 = 4;

pub use crate::core::model::MountEntry;

/// Decodes strunvis(3)-style octal escapes (`\040`) and `\\`; any other
/// escape is refused rather than guessed.
fn unvis(field: &str) -> Result<String, String> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let Some(d) = oct {
            let v = u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            out.push(u8::try_from(v).map_err(|_| format!("{field:?}: bad escape"))?);
            i += 4;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            return Err(format!("{field:?}: unsupported escape (only \\ooo and \\\\)"));
        }
    }
    String::from_utf8(out).map_err(|_| format!("{field:?}: not UTF-8 once decoded"))
}

fn valid_vfstype(t: &str) -> bool {
    !t.is_empty() && t.len() <= 32 && t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A mount point jnet accepts: absolute, no `..`, no NUL.
fn check_file(file: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(file);
    if !p.is_absolute() {
        return Err(format!("{file}: not an absolute pathname"));
    }
    if file.contains('\0') || p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{file}: contains '..' or a NUL byte"));
    }
    Ok(p)
}

/// Parses one fstab(5) line as jail(8) does; `Ok(None)` for a blank or
/// comment line. Errors say what is wrong (the caller adds file:line).
pub fn parse_fstab_line(line: &str, source: &str, root: &Path) -> Result<Option<MountEntry>, String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    let f: Vec<&str> = t.split_ascii_whitespace().take(4).collect();
    if f.len() < 3 {
        return Err(format!("{t}: missing information"));
    }
    let spec = unvis(f[0])?;
    let file = check_file(&unvis(f[1])?)?;
    if spec.is_empty() || spec.starts_with('-') || spec.contains('\0') {
        return Err(format!("{spec:?}: not a filesystem to mount"));
    }
    if !valid_vfstype(f[2]) {
        return Err(format!("{}: not a filesystem type", f[2]));
    }
    let options = match f.get(3) {
        Some(o) if o.starts_with('-') || o.contains('\0') => return Err(format!("{o}: not mount options")),
        Some(o) => Some(o.to_string()),
        None => None,
    };
    Ok(Some(MountEntry {
        source: source.to_string(),
        spec,
        file,
        vfstype: f[2].to_string(),
        options,
        builtin: false,
        root: root.to_path_buf(),
    }))
}

/// jail(8)'s own mounts under the jail's `root`: devfs on `/dev` (ruleset
/// `ruleset`), fdescfs on `/dev/fd`, procfs on `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Devfs { ruleset: u32 },
    Fdescfs,
    Procfs,
}

/// The entry for a built-in mount. A jail rooted at `/` is refused: the
/// mount would cover the host's own /dev or /proc.
pub fn builtin(root: &Path, which: Builtin) -> Result<MountEntry, String> {
    let (name, rel, vfstype, options) = match which {
        Builtin::Devfs { ruleset } => ("mount.devfs", "dev", "devfs", Some(format!("ruleset={ruleset}"))),
        Builtin::Fdescfs => ("mount.fdescfs", "dev/fd", "fdescfs", None),
        Builtin::Procfs => ("mount.procfs", "proc", "procfs", None),
    };
    let r = root.to_str().ok_or_else(|| format!("{name}: path is not UTF-8"))?;
    let root = check_file(r).map_err(|e| format!("{name}: path {e}"))?;
    if root == Path::new("/") {
        return Err(format!(
            "{name}: the jail has no path of its own (its root is /), so this would mount over the host's /{rel}"
        ));
    }
    Ok(MountEntry {
        source: name.to_string(),
        spec: ".".into(),
        file: root.join(rel),
        vfstype: vfstype.into(),
        options,
        builtin: true,
        root: root.clone(),
    })
}

/// The first component at or below `root` on the way to `path` that is a
/// symbolic link, as command.c `check_path()` refuses; components above
/// the jail's root are the host's and not checked (as in jail(8)). A
/// component that does not exist ends the walk (mount(8) reports it).
pub fn symlink_below(root: &Path, path: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(root).ok()?;
    let mut cur = root.to_path_buf();
    for c in rest.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => return Some(cur),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Whether `mount -p` output (fstab format, one mounted filesystem a line)
/// shows `m` mounted: same mount point and type.
pub fn is_mounted(mount_p: &str, m: &MountEntry) -> bool {
    mount_p.lines().any(|l| {
        matches!(parse_fstab_line(l, "", Path::new("/")), Ok(Some(e)) if e.file == m.file && e.vfstype == m.vfstype)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fstab_lines_become_mount_and_umount_argv() {
        let m = parse_fstab_line(
            "/data/www  /jails/www/data nullfs ro 0 0",
            "mount (j.conf:3)",
            Path::new("/j"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            m.mount_args(),
            ["-t", "nullfs", "-o", "ro", "/data/www", "/jails/www/data"]
        );
        assert_eq!(m.umount_args(), ["-t", "nullfs", "/jails/www/data"]);
        let m = parse_fstab_line("tmpfs\t/jails/www/tmp tmpfs", "x", Path::new("/j"))
            .unwrap()
            .unwrap();
        assert_eq!(m.mount_args(), ["-t", "tmpfs", "tmpfs", "/jails/www/tmp"]);
        let m = parse_fstab_line("/my\\040data /jails/a\\040b nullfs rw", "x", Path::new("/j"))
            .unwrap()
            .unwrap();
        assert_eq!(m.spec, "/my data");
        assert_eq!(m.file, PathBuf::from("/jails/a b"));
        assert_eq!(parse_fstab_line("  # comment", "x", Path::new("/j")), Ok(None));
        assert_eq!(parse_fstab_line("", "x", Path::new("/j")), Ok(None));
    }

    #[test]
    fn bad_fstab_lines_are_refused_with_a_reason() {
        for (line, want) in [
            ("/data /jails/x", "missing information"),
            ("/data jails/x nullfs", "not an absolute pathname"),
            ("/data /jails/../etc nullfs", "'..'"),
            ("-oexec /jails/x nullfs", "not a filesystem to mount"),
            ("/data /jails/x null;fs", "not a filesystem type"),
            ("/data /jails/x nullfs -f", "not mount options"),
            ("/da\\ta /jails/x nullfs", "unsupported escape"),
        ] {
            let e = parse_fstab_line(line, "x", Path::new("/j")).unwrap_err();
            assert!(e.contains(want), "{line:?}: {e}");
        }
    }

    #[test]
    fn builtin_mounts_follow_jail_8() {
        let root = Path::new("/usr/jails/www");
        let d = builtin(root, Builtin::Devfs { ruleset: 4 }).unwrap();
        assert_eq!(
            d.mount_args(),
            ["-t", "devfs", "-o", "ruleset=4", ".", "/usr/jails/www/dev"]
        );
        assert_eq!(d.umount_args(), ["/usr/jails/www/dev"]);
        let f = builtin(root, Builtin::Fdescfs).unwrap();
        assert_eq!(f.mount_args(), ["-t", "fdescfs", ".", "/usr/jails/www/dev/fd"]);
        let p = builtin(root, Builtin::Procfs).unwrap();
        assert_eq!(p.mount_args(), ["-t", "procfs", ".", "/usr/jails/www/proc"]);
        assert_eq!(p.umount_args(), ["/usr/jails/www/proc"]);
        let e = builtin(Path::new("/"), Builtin::Procfs).unwrap_err();
        assert!(e.contains("mount.procfs") && e.contains("host's /proc"), "{e}");
        assert!(builtin(Path::new("jails/x"), Builtin::Fdescfs).is_err());
    }

    #[test]
    fn mounted_check_reads_mount_p() {
        let m = builtin(Path::new("/usr/jails/www"), Builtin::Devfs { ruleset: 4 }).unwrap();
        let out = "/dev/ada0p2\t\t/\t\t\tufs\trw\t\t1 1\ndevfs\t\t\t/usr/jails/www/dev\tdevfs\trw\t\t0 0\n";
        assert!(is_mounted(out, &m));
        assert!(!is_mounted("devfs /dev devfs rw 0 0\n", &m));
        assert!(!is_mounted("/x /usr/jails/www/dev nullfs rw 0 0\n", &m));
    }

    #[test]
    fn symlinks_below_the_root_are_found() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("j");
        std::fs::create_dir_all(root.join("usr/data")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("evil")).unwrap();
        assert_eq!(symlink_below(&root, &root.join("usr/data")), None);
        assert_eq!(symlink_below(&root, &root.join("evil/x")), Some(root.join("evil")));
        assert_eq!(symlink_below(&root, &root.join("missing/x")), None);
        assert_eq!(symlink_below(&root, Path::new("/elsewhere")), None);
    }
}
