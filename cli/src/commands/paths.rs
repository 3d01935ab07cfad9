//! Where the commands may write the files and directories the user names: never into a store's
//! directory (nor a mirror leg's), where an output would overwrite or sit among the store's own
//! files. Paths are judged as the kernel will resolve them: symbolic links and `..` followed.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use strata_engine::format::parse_meta_object;
use strata_engine::mirror::layout::HEADER_OBJECT;

use super::CliResult;
use crate::error::CliError;

/// Most symbolic links followed while resolving one path (the kernel's limit).
const SYMLINKS_MAX: u32 = 40;

/// What makes a directory a store's or a mirror leg's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Marker {
    /// A metadata journal (`meta-...`): a store.
    Store(String),
    /// A leg header (`primary.hdr`): a mirror leg.
    Leg,
}

impl Marker {
    /// `holds a strata store (meta-...)`.
    pub(super) fn describe(&self) -> String {
        match self {
            Marker::Store(journal) => format!("holds a strata store ({journal})"),
            Marker::Leg => format!("is a strata mirror leg ({HEADER_OBJECT})"),
        }
    }
}

/// Whether directory `dir` holds a store or a mirror leg (nothing if it cannot be read).
pub(super) fn marker(dir: &Path) -> Option<Marker> {
    let mut found = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if parse_meta_object(name).is_some() {
            return Some(Marker::Store(name.to_string()));
        }
        if name == HEADER_OBJECT {
            found = Some(Marker::Leg);
        }
    }
    found
}

/// `path` as the kernel would resolve it, even where it does not exist yet: absolute, with every
/// symbolic link (a dangling one included) and every `.` and `..` resolved.
pub(super) fn resolve(path: &Path) -> io::Result<PathBuf> {
    resolve_from(&std::path::absolute(path)?, 0)
}

fn resolve_from(path: &Path, links: u32) -> io::Result<PathBuf> {
    if links > SYMLINKS_MAX {
        return Err(io::Error::other("too many levels of symbolic links"));
    }
    if let Ok(real) = path.canonicalize() {
        return Ok(real);
    }
    // A dangling symbolic link: what it names (creating the output creates that).
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = fs::read_link(path)?;
        let base = path.parent().unwrap_or(Path::new("/"));
        return resolve_from(&base.join(target), links + 1);
    }
    // Missing: its parent resolved, then its last component.
    let Some(parent) = path.parent() else {
        return Ok(path.to_path_buf());
    };
    let mut resolved = resolve_from(parent, links)?;
    match path.components().next_back() {
        Some(Component::Normal(name)) => resolved.push(name),
        Some(Component::ParentDir) => {
            resolved.pop();
        }
        _ => {}
    }
    Ok(resolved)
}

fn refuse(message: String) -> CliError {
    CliError::Message {
        code: "INVALID_ARGUMENT",
        message,
    }
}

/// Refuses, before anything is written, an output file `output` (given for the store in
/// `store`) that resolves into the store's directory, or into any directory that holds a store
/// or a mirror leg, or that is one of the store's files under another name (a hard link).
pub(super) fn check_output(output: &Path, store: &Path) -> CliResult {
    let resolved = resolve(output).map_err(|e| CliError::io(output.display().to_string(), e))?;
    let shown = if resolved.as_path() == output {
        String::new()
    } else {
        format!(" (it resolves to {})", resolved.display())
    };
    if let Ok(store_real) = store.canonicalize() {
        if resolved.starts_with(&store_real) {
            return Err(refuse(format!(
                "{}: refusing to write inside the store {}{shown}: write the output outside any store directory",
                output.display(),
                store.display()
            )));
        }
        if let Ok(meta) = fs::metadata(&resolved) {
            if meta.is_file() && meta.nlink() > 1 && is_store_file(&store_real, &meta) {
                return Err(refuse(format!(
                    "{}: refusing to write over a file of the store {} (a hard link to it): write the output outside any store directory",
                    output.display(),
                    store.display()
                )));
            }
        }
    }
    if let Some(parent) = resolved.parent() {
        if let Some(found) = marker(parent) {
            return Err(refuse(format!(
                "{}: refusing to write into {}, which {}{shown}; the store is {}: write the output outside any store directory",
                output.display(),
                parent.display(),
                found.describe(),
                store.display()
            )));
        }
    }
    Ok(())
}

/// Whether the file `meta` describes is one of the files in the store directory `store`.
fn is_store_file(store: &Path, meta: &fs::Metadata) -> bool {
    let Ok(entries) = fs::read_dir(store) else {
        return false;
    };
    entries.flatten().any(|entry| {
        entry
            .metadata()
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
    })
}

/// Refuses, before anything is written, a directory `target` that output files are to be written
/// in (a copy target of the store in `store`): inside the store's directory, or a directory that
/// holds a store or a mirror leg. `what` names it (`--target backup`).
pub(super) fn check_output_dir(target: &Path, store: &Path, what: &str) -> CliResult {
    let resolved = resolve(target).map_err(|e| CliError::io(target.display().to_string(), e))?;
    if let Ok(store_real) = store.canonicalize() {
        if resolved.starts_with(&store_real) {
            return Err(refuse(format!(
                "{what}: {} is inside the store {}: give a directory outside any store",
                target.display(),
                store.display()
            )));
        }
    }
    if let Some(found) = marker(&resolved) {
        return Err(refuse(format!(
            "{what}: {} {}; the store is {}: give a directory outside any store",
            target.display(),
            found.describe(),
            store.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_paths_resolve_through_links_and_dots() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        fs::create_dir(root.join("store")).unwrap();
        std::os::unix::fs::symlink(root.join("store"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("store/absent"), root.join("dangling")).unwrap();
        assert_eq!(resolve(&root.join("link/x")).unwrap(), root.join("store/x"));
        assert_eq!(
            resolve(&root.join("store/../store/x")).unwrap(),
            root.join("store/x")
        );
        assert_eq!(
            resolve(&root.join("dangling")).unwrap(),
            root.join("store/absent")
        );
        assert_eq!(
            resolve(&root.join("store/a/b/..")).unwrap(),
            root.join("store/a")
        );
        std::os::unix::fs::symlink(root.join("loop"), root.join("loop")).unwrap();
        assert!(resolve(&root.join("loop")).is_err());
    }
}
