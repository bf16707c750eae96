//! The writer lock of a data folder: an OS file lock on `data/.lock`, released by the kernel when
//! its holder exits, however it exits. The holder writes who it is into the file, so a second
//! writer can name the one it waits for.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// How a reader that recovers the data folder describes itself in the lock file.
pub const RECOVERING: &str = "recovering the data folder";

/// What to do when another process holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Fail at once, naming the holder.
    No,
    /// Block until it is free.
    Yes,
}

impl Lock {
    /// Takes the lock of `data` for `purpose` (written into the lock file for others to read).
    pub fn acquire(data: &Path, purpose: &str, wait: Wait) -> Result<Lock, String> {
        match Self::try_acquire(data, purpose)? {
            Some(lock) => Ok(lock),
            // A reader finishing an interrupted publish holds it for a moment only.
            None if wait == Wait::Yes || holder(data).contains(RECOVERING) => {
                let path = data.join(".lock");
                let file = open(&path)?;
                file.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
                let mut lock = Lock { file, path };
                lock.describe(purpose);
                Ok(lock)
            }
            None => Err(format!(
                "another jobforge process holds the data folder {} ({}); wait for it to finish, or pass --wait",
                data.display(),
                holder(data)
            )),
        }
    }

    /// Takes the lock if it is free; `None` when another process holds it.
    pub fn try_acquire(data: &Path, purpose: &str) -> Result<Option<Lock>, String> {
        std::fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        let path = data.join(".lock");
        let file = open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                let mut lock = Lock { file, path };
                lock.describe(purpose);
                Ok(Some(lock))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }

    fn describe(&mut self, purpose: &str) {
        let text = format!("pid {}, {purpose}, since {}\n", std::process::id(), chrono::Utc::now().to_rfc3339());
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(text.as_bytes());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))
}

/// Who holds the lock, as it wrote itself into the lock file.
pub fn holder(data: &Path) -> String {
    let mut text = String::new();
    let _ = File::open(data.join(".lock")).and_then(|mut f| f.read_to_string(&mut text));
    match text.trim() {
        "" => "holder unknown".to_string(),
        t => t.to_string(),
    }
}
