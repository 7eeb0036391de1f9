//! The token file: the server and the tokens of the last `login`, readable by its owner only.
//!
//! It is written to a temporary file created with mode 0600 in the same directory, then
//! renamed over the old one, so no reader ever sees a partial file and no moment exists where
//! the tokens are readable by others. A file that group or others can read is refused, as ssh
//! refuses such a key: the tokens in it may already have leaked.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};

use crate::Failure;

/// What `login` keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The backend's base URL, e.g. `http://127.0.0.1:3000`.
    pub server: String,
    /// Who logged in.
    pub email: String,
    /// The access token (a JWT).
    pub access_token: String,
    /// The refresh token, when the backend issued one.
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Where the token file is without `--config` or `$AEGISCTL_CONFIG`:
/// `$XDG_CONFIG_HOME/aegis/credentials.json` (an absolute `XDG_CONFIG_HOME` only, as the XDG
/// specification says), else `$HOME/.config/aegis/credentials.json`. Never the current
/// directory: without a home, the user must say where.
pub fn default_path() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        return Ok(dir.join("aegis/credentials.json"));
    }
    match std::env::var_os("HOME").map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home.join(".config/aegis/credentials.json")),
        _ => Err(Failure::Usage(
            "HOME is not set: say where the token file goes with --config or AEGISCTL_CONFIG"
                .into(),
        )),
    }
}

/// Reads the file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<Credentials>, Failure> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| {
        Failure::Unauthenticated(format!("cannot read {}: {e}", path.display()))
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    // The mode of the file that is read, not of whatever the path names a moment later.
    check_owner_only(path, &file.metadata().map_err(cannot)?)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(cannot)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::Unauthenticated(format!(
            "{} is not a token file ({e}); run `aegisctl login` again",
            path.display()
        ))
    })?;
    let field = |k: &str| value[k].as_str().map(str::to_owned);
    match (field("server"), field("accessToken")) {
        (Some(server), Some(access_token)) => Ok(Some(Credentials {
            server,
            email: field("email").unwrap_or_default(),
            access_token,
            refresh_token: field("refreshToken"),
        })),
        _ => Err(Failure::Unauthenticated(format!(
            "{} holds no server or token; run `aegisctl login` again",
            path.display()
        ))),
    }
}

/// Writes the file with mode 0600 (its directory 0700 when created).
pub fn save(path: &Path, credentials: &Credentials) -> Result<(), Failure> {
    let fail = |what: &str, e: std::io::Error| {
        Failure::Usage(format!("cannot {what} {}: {e}", path.display()))
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir
        && !dir.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| fail("create the folder of", e))?;
    }
    let body = json!({
        "server": credentials.server,
        "email": credentials.email,
        "accessToken": credentials.access_token,
        "refreshToken": credentials.refresh_token,
    });
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "credentials.json".to_owned());
    // Unique per attempt (a crashed run's leftover never blocks the next save).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.{}.{nanos}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(body.to_string().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("write", e));
    }
    Ok(())
}

/// Removes the file; `true` when there was one.
pub fn remove(path: &Path) -> Result<bool, Failure> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Failure::Usage(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

#[cfg(unix)]
fn check_owner_only(path: &Path, metadata: &std::fs::Metadata) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Failure::Unauthenticated(format!(
            "{} can be read by others (mode {:o}); its tokens may have leaked. \
             Remove it and log in again (`aegisctl logout && aegisctl login`).",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only(_: &Path, _: &std::fs::Metadata) -> Result<(), Failure> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        std::env::temp_dir()
            .join(format!("aegisctl-{tag}-{}-{nanos}", std::process::id()))
            .join("nested/credentials.json")
    }

    fn sample() -> Credentials {
        Credentials {
            server: "http://127.0.0.1:3000".into(),
            email: "a@b.c".into(),
            access_token: "secret-access".into(),
            refresh_token: Some("secret-refresh".into()),
        }
    }

    #[test]
    fn round_trips_with_owner_only_modes() {
        let path = scratch("roundtrip");
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Some(sample()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        // Saving again replaces the file and leaves no temporary behind.
        save(&path, &sample()).unwrap();
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
        assert!(remove(&path).unwrap());
        assert!(!remove(&path).unwrap());
        assert_eq!(load(&path).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = scratch("open");
        save(&path, &sample()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string().contains("can be read by others (mode 644)"),
            "{err}"
        );
    }

    #[test]
    fn debug_never_shows_a_token() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn a_damaged_file_says_to_log_in_again() {
        let path = scratch("damaged");
        save(&path, &sample()).unwrap();
        std::fs::write(&path, "{not json").unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.to_string().contains("aegisctl login"), "{err}");
    }
}
