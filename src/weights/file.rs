//! Weights in files (feature `std`): written whole beside the target, synced, then
//! renamed over it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use alloc::format;
use alloc::string::ToString;

use super::WeightMap;
use crate::error::{Caller, Error, Result};
use crate::machine::Machine;
use crate::optim::Resumable;
use crate::scalar::Scalar;

impl<T: Scalar> Machine<T> {
    /// Saves every parameter to the safetensors file `path`, under its own name, as `F32`
    /// or `F64`. The file is written whole beside `path`, synced, then renamed over it. If
    /// `path` is a symlink, the file it points to (through any chain of links) is written
    /// that way and the link stays a link.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written (no such directory, for instance); an
    /// existing file at `path` is then left as it was. [`Error::Mismatch`] as for
    /// [`save_to_bytes`](Machine::save_to_bytes).
    #[track_caller]
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with(path, &WeightMap::new())
    }

    /// [`save`](Machine::save) under the names and layouts of `map`.
    ///
    /// # Errors
    /// As for `save`, and [`Error::Mismatch`] if `map` gives two parameters one name.
    #[track_caller]
    pub fn save_with(&self, path: impl AsRef<Path>, map: &WeightMap) -> Result<()> {
        let caller = Caller::here();
        let path = path.as_ref();
        let bytes = self.encode(map, caller)?;
        write_atomic(path, &bytes).map_err(|e| io_error(path, &e, caller))
    }

    /// Loads every parameter from the safetensors file `path` (see the
    /// [module docs](crate::weights) for the rules). All or nothing: after an `Err` the
    /// parameters are unchanged.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::WeightsFormat`] if it is not
    /// safetensors (empty, cut short, corrupt); [`Error::Weights`] for the first
    /// parameter whose tensor is missing or of another shape or dtype, else for the first
    /// (by name) tensor that no parameter takes.
    #[track_caller]
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.load_with(path, &WeightMap::new())
    }

    /// [`load`](Machine::load) under the names and layouts of `map`.
    ///
    /// # Errors
    /// As for `load`.
    #[track_caller]
    pub fn load_with(&mut self, path: impl AsRef<Path>, map: &WeightMap) -> Result<()> {
        let caller = Caller::here();
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| io_error(path, &e, caller))?;
        self.decode(&bytes, &path.display().to_string(), map, caller)
    }
}

impl<T: Scalar> Machine<T> {
    /// Saves a checkpoint that resumes training: every parameter, the state and settings
    /// of `opt`, the step to resume at (`step`, the position of a schedule) and the
    /// machine's random state, to the safetensors file `path`, written as
    /// [`save`](Machine::save) writes (whole, synced, renamed over `path`). See the
    /// [module docs](crate::weights#checkpoints).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written (an existing file is then left as it
    /// was); [`Error::Mismatch`] if `opt` holds state made on a machine of the other
    /// element type or for a parameter this machine has not, or a name is taken twice.
    #[track_caller]
    pub fn save_checkpoint<O: Resumable>(
        &self,
        path: impl AsRef<Path>,
        opt: &O,
        step: usize,
    ) -> Result<()> {
        let caller = Caller::here();
        let path = path.as_ref();
        let bytes = self.encode_checkpoint(opt, step, caller)?;
        write_atomic(path, &bytes).map_err(|e| io_error(path, &e, caller))
    }

    /// Loads a checkpoint [`save_checkpoint`](Machine::save_checkpoint) wrote into this
    /// machine and `opt`, and returns the step to resume at. All or nothing: after an
    /// `Err`, the machine and `opt` are as they were.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::WeightsFormat`] if it is not a
    /// checkpoint (corrupt, cut short, another format or version, saved by a machine of
    /// the other element type, its optimizer stepping a parameter this machine has not);
    /// [`Error::Weights`] for a parameter or optimizer buffer missing or of another shape,
    /// or a tensor that is neither; [`Error::Mismatch`] if it is another optimizer's
    /// state, or of other settings (bar the learning rate, which is restored).
    #[track_caller]
    pub fn load_checkpoint<O: Resumable>(
        &mut self,
        path: impl AsRef<Path>,
        opt: &mut O,
    ) -> Result<usize> {
        let caller = Caller::here();
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| io_error(path, &e, caller))?;
        self.decode_checkpoint(&bytes, &path.display().to_string(), opt, caller)
    }
}

fn io_error(path: &Path, e: &io::Error, caller: Caller) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
        caller,
    }
}

/// How many symlinks a save follows before it gives up (Linux's own limit is 40).
const MAX_LINKS: usize = 40;

/// The file a save to `path` writes: `path` itself, or, if it is a symlink, what the
/// chain of links ends at (possibly not there yet), so that the rename replaces the target
/// and every link stays a link.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = fs::read_link(&p)?;
                p = match p.parent() {
                    // a relative link is relative to the folder holding it
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symlinks in a row (a loop?)"
    )))
}

/// Writes `bytes` to a new file beside what `path` names (through symlinks), syncs it,
/// and renames it over that file.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = &resolve_links(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A crashed process with our pid may have left the name we pick: `create_new` never
    // opens its file, and we take the next name instead (never more than a few thousand,
    // so a directory we can create nothing in still ends the loop).
    let mut attempts = 0;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{}.{}-{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 4096 => {
                attempts += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let synced = file.write_all(bytes).and_then(|()| file.sync_all());
    drop(file);
    let written = synced.and_then(|()| fs::rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
        return written;
    }
    // The rename itself is durable once the directory is synced; not every platform lets
    // a directory be opened for that, and the new file is complete either way.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
