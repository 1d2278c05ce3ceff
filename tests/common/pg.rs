//! A real PostgreSQL server for tests (issue 11): `initdb` and `pg_ctl` in
//! a temporary directory, Unix socket only, run as the `postgres` user
//! when the tests run as root, stopped and removed on drop. Roles: `jnet`
//! (trusted) owning database `jnet`, `jpw` (SCRAM password [`PASSWORD`])
//! owning `jpw`. Without PostgreSQL, [`Pg::start`] says so and returns
//! `None`; under CI=true it fails. Shared by tests/fleet_pg.rs,
//! tests/fleet_cli.rs and the library's fleet conformance tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub const PASSWORD: &str = "Sekr1t-pw-7f3a9c";

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn bindir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = glob::glob("/usr/lib/postgresql/*/bin").ok()?.flatten().collect();
    dirs.sort();
    dirs.push("/usr/local/bin".into());
    dirs.into_iter()
        .rev()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// A PostgreSQL server of this test; stopped and removed on drop.
pub struct Pg {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The server's port (Unix socket name and, with [`Pg::listen_tls`], TCP).
    pub port: u16,
    /// `listen_addresses`: empty (Unix socket only) unless TLS is on.
    listen: String,
}

impl Pg {
    /// `None` (after saying so) when PostgreSQL is missing outside CI.
    pub fn start(test: &str) -> Option<Pg> {
        let Some(bin) = bindir() else {
            let msg =
                "PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin or /usr/local/bin)";
            assert!(!ci(), "CI=true: {msg}; .ci/run installs the postgresql package");
            eprintln!("SKIP {test}: {msg}");
            return None;
        };
        let as_postgres = nix::unistd::geteuid().is_root();
        let dir = tempfile::Builder::new().prefix("jnet-pg").tempdir_in("/tmp").unwrap();
        if as_postgres {
            // why: the server refuses to run as root; it runs as the
            // postgres user, which must own its directory.
            let u = nix::unistd::User::from_name("postgres")
                .unwrap()
                .unwrap_or_else(|| panic!("running as root but there is no postgres user to run the server"));
            std::os::unix::fs::chown(dir.path(), Some(u.uid.as_raw()), Some(u.gid.as_raw())).unwrap();
        }
        let pg = Pg {
            dir,
            bin,
            as_postgres,
            port: 5432,
            listen: String::new(),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        // The password user authenticates with SCRAM; everyone else is
        // trusted (only this socket, only this test).
        let hba = pg.dir.path().join("data/pg_hba.conf");
        std::fs::write(&hba, "local all jpw scram-sha-256\nlocal all all trust\n").unwrap();
        pg.start_server();
        let mut c = pg.client("postgres", "postgres");
        // One statement each: CREATE DATABASE cannot run in the implicit
        // transaction of a multi-statement batch.
        for sql in [
            "CREATE ROLE jnet LOGIN".to_string(),
            "CREATE DATABASE jnet OWNER jnet".to_string(),
            format!("CREATE ROLE jpw LOGIN PASSWORD '{PASSWORD}'"),
            "CREATE DATABASE jpw OWNER jpw".to_string(),
        ] {
            c.batch_execute(&sql).unwrap();
        }
        Some(pg)
    }

    pub fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn sock(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_server(&self) {
        let log = self.dir.path().join("log").display().to_string();
        let opts = format!(
            "-k {} -c listen_addresses={} -p {} -c fsync=off",
            self.sock(),
            self.listen,
            self.port
        );
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-w", "-o", &opts, "start"]);
    }

    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-w", "-m", "fast", "stop"]);
    }

    pub fn restart(&self) {
        self.stop();
        self.start_server();
    }

    pub fn url(&self, user: &str) -> String {
        format!("host={} port={} dbname={user} user={user}", self.sock(), self.port)
    }

    /// A plain session of the test itself (superuser or a role).
    pub fn client(&self, user: &str, db: &str) -> postgres::Client {
        postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user(user)
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap()
    }
}

impl Pg {
    /// Restarts the server with TLS on 127.0.0.1 (a free port, also the
    /// Unix socket's) and plain TCP refused: makes a CA and a server
    /// certificate for IP 127.0.0.1 with openssl(1) in `<dir>/tls`;
    /// returns the CA's PEM file.
    pub fn listen_tls(&mut self) -> PathBuf {
        let tls = self.dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        let ossl = |args: &[&str]| {
            let o = Command::new("openssl")
                .args(args)
                .current_dir(&tls)
                .output()
                .expect("openssl(1)");
            assert!(
                o.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        ossl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=jnet test CA",
        ]);
        ossl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(tls.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        ossl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        if self.as_postgres {
            let u = nix::unistd::User::from_name("postgres").unwrap().unwrap();
            for f in ["server.key", "server.pem"] {
                std::os::unix::fs::chown(tls.join(f), Some(u.uid.as_raw()), Some(u.gid.as_raw())).unwrap();
            }
        }
        std::fs::set_permissions(
            tls.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let conf = self.dir.path().join("data/postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text += &format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            tls.join("server.pem").display(),
            tls.join("server.key").display()
        );
        std::fs::write(&conf, text).unwrap();
        let hba = self.dir.path().join("data/pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!("hostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n{text}"),
        )
        .unwrap();
        self.stop();
        self.port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        self.listen = "127.0.0.1".into();
        self.start_server();
        tls.join("ca.pem")
    }

    /// For a server kept in a static (never dropped): a watcher process
    /// stops it and removes its directory once this test process is gone.
    // why: the watcher must outlive this process, so nobody waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn stop_when_this_process_exits(&self) {
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- '{pg_ctl}' -D '{}' -w -m immediate stop",
                self.data()
            )
        } else {
            format!("'{pg_ctl}' -D '{}' -w -m immediate stop", self.data())
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.path().display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sh for the server's watcher");
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-w", "-m", "immediate", "stop"];
        // Best effort: the server may already be stopped by the test.
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}
