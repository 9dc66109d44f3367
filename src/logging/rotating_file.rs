//! The log file, with nats-server's size-based rotation
//! (`log_size_limit`): once a write takes the file past the limit, the
//! file is renamed to `<path>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn` (the time of
//! the rotation, UTC like our log lines) and a new one is started with the
//! line `Rotated log, backup saved as "<backup>"`. The line that crossed
//! the limit stays in the backup.

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use percore_core::calendar::civil;
use percore_core::go_quote::go_quote;
use percore_core::log::Level;

/// Formats one line (pid, time, level) without its line end.
pub type LineFormat = dyn Fn(Level, fmt::Arguments<'_>) -> String;

pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// The file's size: what it had when opened plus what we wrote.
    size: u64,
    /// `log_size_limit`; `None`: no rotation.
    limit: Option<u64>,
    /// The size that triggers the next rotation: the limit, or twice the
    /// last one after a rotation failed (as nats-server, so that a
    /// failing rename is not retried on every line).
    rotate_at: u64,
}

impl RotatingFile {
    /// Opens (creates, appends to) `path`; `limit` is nats-server's
    /// `LogSizeLimit`: rotation only for a positive value.
    pub fn open(path: &Path, limit: i64) -> std::io::Result<RotatingFile> {
        let file = open_for_append(path)?;
        let size = file.metadata()?.len();
        let limit = u64::try_from(limit).ok().filter(|&l| l > 0);
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            limit,
            rotate_at: limit.unwrap_or(u64::MAX),
        })
    }

    /// SIGUSR1: the same path opened again (someone moved the file away).
    pub fn reopen(&mut self) -> std::io::Result<()> {
        let file = open_for_append(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = file;
        self.rotate_at = self.limit.unwrap_or(u64::MAX);
        Ok(())
    }

    /// Already past the limit (opened so): the next line rotates it.
    pub fn over_limit(&self) -> bool {
        self.size > self.rotate_at
    }

    /// Appends `line` (with its line end), then rotates if that took the
    /// file past the limit. `format` writes the rotation's own lines.
    pub fn write_line(&mut self, line: &[u8], format: &LineFormat) {
        if self.file.write_all(line).is_err() {
            return;
        }
        self.size = self.size.saturating_add(line.len() as u64);
        if self.size > self.rotate_at {
            self.rotate(format);
        }
    }

    fn rotate(&mut self, format: &LineFormat) {
        let limit = self.limit.unwrap_or(u64::MAX);
        let backup = backup_path(&self.path, SystemTime::now());
        if let Err(e) = std::fs::rename(&self.path, &backup) {
            self.rotate_at = self.rotate_at.saturating_mul(2);
            let text = format!(
                "Unable to rename logfile for rotation ({e}), will attempt next rotation at size {}",
                self.rotate_at
            );
            self.write_direct(Level::Error, &text, format);
            return;
        }
        let file = match open_for_append(&self.path) {
            Ok(file) => file,
            Err(e) => {
                // nats-server panics here; we keep logging to the file we
                // have, under its old name again if it can be put back.
                let _ = std::fs::rename(&backup, &self.path);
                self.rotate_at = self.rotate_at.saturating_mul(2);
                let text = format!(
                    "Unable to re-open the logfile {} after rotation ({e}), will attempt next rotation at size {}",
                    go_quote(self.path.as_os_str().as_encoded_bytes()),
                    self.rotate_at
                );
                self.write_direct(Level::Error, &text, format);
                return;
            }
        };
        self.file = file;
        self.size = 0;
        self.rotate_at = limit;
        let text = format!(
            "Rotated log, backup saved as {}",
            go_quote(backup.as_os_str().as_encoded_bytes())
        );
        self.write_direct(Level::Info, &text, format);
    }

    /// A line about the rotation itself, counted but never rotating: it
    /// ends with CRLF, as nats-server's (it writes these past its logger).
    fn write_direct(&mut self, level: Level, text: &str, format: &LineFormat) {
        let mut line = format(level, format_args!("{text}"));
        line.push_str("\r\n");
        if self.file.write_all(line.as_bytes()).is_ok() {
            self.size = self.size.saturating_add(line.len() as u64);
        }
    }
}

/// nats-server's log file permissions (0660, less the umask).
fn open_for_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o660)
        .open(path)
}

/// `<path>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn`.
fn backup_path(path: &Path, now: SystemTime) -> PathBuf {
    let c = civil(now);
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(
        ".{:04}.{:02}.{:02}.{:02}.{:02}.{:02}.{:09}",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos
    ));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn backup_names_carry_the_time_to_the_nanosecond() {
        let time = UNIX_EPOCH + Duration::new(1_765_096_673, 415_750_063);
        assert_eq!(
            backup_path(Path::new("/var/log/p.log"), time),
            PathBuf::from("/var/log/p.log.2025.12.07.08.37.53.415750063")
        );
    }

    fn plain(level: Level, args: fmt::Arguments<'_>) -> String {
        format!("[{}] {args}", level.tag())
    }

    #[test]
    fn a_write_past_the_limit_moves_the_file_to_a_backup() {
        let dir = std::env::temp_dir().join(format!("percore-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("p.log");
        let mut file = RotatingFile::open(&path, 10).expect("open");
        file.write_line(b"0123456789\n", &plain);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        let backup = &names[1];
        assert_eq!(
            std::fs::read_to_string(backup).expect("backup"),
            "0123456789\n"
        );
        let fresh = std::fs::read_to_string(&path).expect("new file");
        assert_eq!(
            fresh,
            format!(
                "[INF] Rotated log, backup saved as \"{}\"\r\n",
                backup.display()
            )
        );
        // The rotation line alone is past the limit: the next line rotates.
        assert!(file.over_limit());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
