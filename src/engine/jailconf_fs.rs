//! [`FsLoader`]: the real file system behind the jail.conf(5) reader.
//!
//! Reads files as UTF-8 text and expands `.include` globs with the `glob`
//! crate (sorted, like glob(3)); a glob matching nothing is an empty list.
//! It does not interpret jail.conf; that is `core::jailconf`.

use std::io::ErrorKind;

use crate::core::jailconf::Loader;

/// Reads jail.conf files and includes from the local file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsLoader;

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "no such file".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        ErrorKind::InvalidData => "not valid UTF-8 text".to_string(),
        ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => e.to_string(),
    }
}

impl Loader for FsLoader {
    fn read(&self, path: &str) -> Result<String, String> {
        tracing::debug!(path, "reading jail.conf file");
        std::fs::read_to_string(path).map_err(|e| describe(&e))
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let paths = glob::glob(pattern).map_err(|e| format!("bad glob pattern {pattern:?}: {e}"))?;
        let mut out = Vec::new();
        for p in paths {
            let p = p.map_err(|e| format!("{}: {}", e.path().display(), describe(e.error())))?;
            out.push(p.to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::jailconf::{load, JailConfError};

    #[test]
    fn loads_relative_and_glob_includes_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("jail.conf.d")).unwrap();
        std::fs::write(
            root.join("jail.conf"),
            "path = \"/jails/$name\";\n.include \"jail.conf.d/*.conf\";\n.include \"none/*.conf\";\n",
        )
        .unwrap();
        std::fs::write(root.join("jail.conf.d/b.conf"), "b { ip4.addr = 10.0.0.2; }").unwrap();
        std::fs::write(root.join("jail.conf.d/a.conf"), "a { ip4 = inherit; }").unwrap();
        std::fs::write(root.join("jail.conf.d/skip.txt"), "not { parsed").unwrap();
        let path = root.join("jail.conf");
        let c = load(path.to_str().unwrap(), &FsLoader).unwrap();
        let names: Vec<&str> = c.jails().iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(c.jail("b").unwrap().path(), Some("/jails/b"));
        assert!(c.jail("b").unwrap().location.file.ends_with("jail.conf.d/b.conf"));
    }

    #[test]
    fn missing_root_and_missing_include() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.conf");
        let e = load(missing.to_str().unwrap(), &FsLoader).unwrap_err();
        assert!(matches!(e, JailConfError::Read { .. }), "{e:?}");
        assert_eq!(e.kind(), crate::error::ErrorKind::NotFound);
        assert!(e.to_string().ends_with("nope.conf: no such file"), "{e}");

        let root = dir.path().join("jail.conf");
        std::fs::write(&root, "a { }\n\n.include \"gone.conf\";\n").unwrap();
        let e = load(root.to_str().unwrap(), &FsLoader).unwrap_err();
        let want = format!(
            "{}:3: cannot include {}: no such file",
            root.display(),
            dir.path().join("gone.conf").display()
        );
        assert_eq!(e.to_string(), want);
    }
}
