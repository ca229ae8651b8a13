//! Weights in files (feature `std`): written whole beside the target, synced, then
//! renamed over it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use alloc::format;
use alloc::string::ToString;

use super::WeightMap;
use crate::error::{Caller, Error, Result};
use crate::machine::Machine;
use crate::scalar::Scalar;

impl<T: Scalar> Machine<T> {
    /// Saves every parameter to the safetensors file `path`, under its own name, as `F32`
    /// or `F64`. The file is written whole beside `path`, synced, then renamed over it.
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

fn io_error(path: &Path, e: &io::Error, caller: Caller) -> Error {
    Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
        caller,
    }
}

/// Writes `bytes` to a new file beside `path`, syncs it, and renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
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
