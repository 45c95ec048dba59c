//! The message record under `LOG_DIR`: whole lines or nothing, following the file through rotation.
//!
//! The seed's `Relay_<ip>.txt` and `Sink_<ip>.txt` are the record of what was
//! relayed and delivered, so a line is in them whole or not at all. A line is
//! appended with one `write(2)` on an `O_APPEND` descriptor; when the disk
//! fills mid-line, the write comes back short and the file is cut back to its
//! length before it, under the same lock that orders the writes (one process
//! writes one file: each tier's file is named for its own `POD_IP`). With
//! `LOG_FSYNC=on` each line is also flushed to the disk before the message is
//! acknowledged. Log rotation is followed two ways: SIGHUP reopens the path
//! (as logrotate expects), and at most once a second the path is compared with
//! the open file (`stat` against `fstat`), so a rename without a signal also
//! moves writing on to a new file; a reopen that fails keeps the old
//! (renamed) file. A deleted file is another matter: before each line one
//! `fstat` of the open file checks that it still has a name (`st_nlink`), and
//! one that has none (deleted, or `LOG_DIR` removed) is created again at its
//! path; while that cannot be done, nothing is written and the caller says
//! the message was not recorded, since a line in a deleted file is lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often the path is compared with the open file.
const ROTATION_CHECK: Duration = Duration::from_secs(1);

/// What happened to the file while a line was appended.
#[derive(Debug)]
pub enum Rotation {
    /// Nothing: the path still names the open file (or it was not checked).
    None,
    /// The path named another file, or none: writing moved to a new file there.
    Followed,
    /// The path named another file, or none, and opening it failed: the old file is kept.
    Failed(io::Error),
    /// The open file had been deleted: it was created again at its path.
    Recreated,
}

/// An append-only record file.
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    fsync: bool,
    open: Mutex<Open>,
}

#[derive(Debug)]
struct Open {
    file: File,
    /// Device and inode of `file`, to compare with what the path names.
    identity: (u64, u64),
    checked: Instant,
}

fn open_append(path: &Path) -> io::Result<Open> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let meta = file.metadata()?;
    Ok(Open {
        file,
        identity: (meta.dev(), meta.ino()),
        checked: Instant::now(),
    })
}

impl RecordFile {
    /// Opens (creating if need be) `path` for appending.
    pub fn open(path: PathBuf, fsync: bool) -> io::Result<RecordFile> {
        let open = open_append(&path)?;
        Ok(RecordFile {
            path,
            fsync,
            open: Mutex::new(open),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `line` (ending in a newline) whole, or leaves the file as it was.
    pub fn append(&self, line: &[u8]) -> io::Result<Rotation> {
        let mut open = self.lock();
        let mut rotation = self.follow(&mut open);
        if self.deleted(&open)? {
            *open = open_append(&self.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("it was deleted and cannot be created again ({e})"),
                )
            })?;
            rotation = Rotation::Recreated;
        }
        let written = loop {
            match (&open.file).write(line) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match written {
            Ok(n) if n == line.len() => {}
            Ok(n) => {
                // The disk filled mid-line: cut the partial line off again.
                let cut = open
                    .file
                    .metadata()
                    .and_then(|m| open.file.set_len(m.len().saturating_sub(n as u64)));
                let detail = match cut {
                    Ok(()) => "the partial line was removed".to_string(),
                    Err(e) => format!("removing the partial line failed: {e}"),
                };
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("only {n} of {} bytes fit ({detail})", line.len()),
                ));
            }
            Err(e) => return Err(e),
        }
        if self.fsync {
            open.file.sync_data()?;
        }
        Ok(rotation)
    }

    /// Whether the open file has been deleted: it has no name left.
    fn deleted(&self, open: &Open) -> io::Result<bool> {
        Ok(open.file.metadata()?.nlink() == 0)
    }

    /// Whether a line could be appended now, checked without writing one:
    /// the file has a name (creating it again if it was deleted) and its
    /// file system has room. For a record that failed, to tell when to say
    /// ready again.
    pub fn probe(&self) -> io::Result<()> {
        const ROOM: u64 = 64 * 1024;
        let mut open = self.lock();
        if self.deleted(&open)? {
            *open = open_append(&self.path)?;
        }
        let stat = rustix::fs::fstatvfs(&open.file)?;
        if stat.f_bavail.saturating_mul(stat.f_frsize) < ROOM {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "less than 64 KiB free",
            ));
        }
        Ok(())
    }

    /// Opens the path anew (SIGHUP); on failure the old file stays in use.
    pub fn reopen(&self) -> io::Result<()> {
        let mut open = self.lock();
        *open = open_append(&self.path)?;
        Ok(())
    }

    /// Moves to a new file if the path no longer names the open one (checked at most once a second).
    fn follow(&self, open: &mut Open) -> Rotation {
        if open.checked.elapsed() < ROTATION_CHECK {
            return Rotation::None;
        }
        open.checked = Instant::now();
        let same = std::fs::metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == open.identity);
        if same {
            return Rotation::None;
        }
        match open_append(&self.path) {
            Ok(new) => {
                *open = new;
                Rotation::Followed
            }
            Err(e) => Rotation::Failed(e),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("three-tier-record-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("Sink_10.0.0.1.txt")
    }

    #[test]
    fn lines_are_appended_whole() {
        let path = temp("append");
        let file = RecordFile::open(path.clone(), true).unwrap();
        file.append(b"one\n").unwrap();
        file.append(b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_renamed_file_is_left_within_a_second_and_sighup_reopens_at_once() {
        let path = temp("rotate");
        let file = RecordFile::open(path.clone(), false).unwrap();
        file.append(b"before\n").unwrap();
        let old = path.with_extension("1");
        std::fs::rename(&path, &old).unwrap();
        // Within the check interval the open file is still written.
        file.append(b"still old\n").unwrap();
        file.lock().checked -= ROTATION_CHECK;
        assert!(matches!(file.append(b"new\n").unwrap(), Rotation::Followed));
        assert_eq!(
            std::fs::read_to_string(&old).unwrap(),
            "before\nstill old\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        std::fs::rename(&path, &old).unwrap();
        file.reopen().unwrap();
        file.append(b"after sighup\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after sighup\n");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
