//! A private PostgreSQL cluster in a temporary folder (`initdb` + `pg_ctl`, about two seconds),
//! for tests that must stop or restart PostgreSQL itself. The machine's own server is never
//! touched (the machine's own server may be shared).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A running private cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

/// The newest installed server binaries (`/usr/lib/postgresql/<v>/bin`), or `PG_BIN_DIR`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("PG_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no PostgreSQL server binaries in /usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin (or set PG_BIN_DIR)".into())
}

/// Runs a server binary as the `postgres` user when we are root (initdb refuses root).
fn run(bin: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let path = bin.join(program);
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    let out = cmd
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PrivatePostgres {
    /// `initdb` (trust auth) and start on a free port.
    pub fn start() -> Result<Self, String> {
        let bin = bin_dir()?;
        let port = aegis_common::server::unused_port().map_err(|e| format!("no free port: {e}"))?;
        let dir = std::env::temp_dir().join(format!("aegis-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // The server runs as `postgres` when we are root: it must own its folder.
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status();
        let data = dir.join("data");
        let data_s = data.display().to_string();
        run(
            &bin,
            "initdb",
            &["-D", &data_s, "-U", "postgres", "-A", "trust", "--no-sync"],
        )?;
        let pg = Self { dir, bin, port };
        pg.pg_ctl("start")?;
        Ok(pg)
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let data = self.dir.join("data").display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        match action {
            "stop" => run(
                &self.bin,
                "pg_ctl",
                &["-D", &data, "-m", "fast", "-w", "stop"],
            ),
            _ => run(
                &self.bin,
                "pg_ctl",
                &["-D", &data, "-l", &log, "-o", &options, "-w", action],
            ),
        }
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) -> Result<(), String> {
        self.pg_ctl("stop")
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl("start")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
