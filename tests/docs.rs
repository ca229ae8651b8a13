//! Documentation a user can paste: doc examples and README snippets name `rand` and
//! `ndarray` through tapegrad's re-exports. Inside this crate a bare `rand::` compiles
//! (they are its dependencies), so the doc tests cannot catch it; in a user's crate with
//! another `rand` it fails ("the trait bound `StdRng: tapegrad::rand::Rng` is not
//! satisfied").

use std::fs;
use std::path::{Path, PathBuf};

/// Places in `code` where `rand::` or `ndarray::` starts a path, not after `tapegrad::`.
fn bare_paths(code: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for krate in ["rand::", "ndarray::"] {
        for (at, _) in code.match_indices(krate) {
            let before = &code[..at];
            let starts_path = !before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
            if starts_path && !before.ends_with("tapegrad::") {
                found.push(at);
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_checker_finds_bare_paths() {
    assert_eq!(
        bare_paths("let r = rand::rngs::StdRng::seed_from_u64(0);"),
        [8]
    );
    assert_eq!(bare_paths("&ndarray::arr1(&[1.0])"), [1]);
    assert!(bare_paths("use tapegrad::rand::SeedableRng; tapegrad::ndarray::arr1").is_empty());
    assert!(bare_paths("my_rand::f(); operand::g()").is_empty());
}

#[test]
fn doc_comments_use_the_re_exports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "found only {files:?}");
    let mut bad = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let doc = line.trim_start();
            if (doc.starts_with("///") || doc.starts_with("//!")) && !bare_paths(doc).is_empty() {
                bad.push(format!("{}:{}: {doc}", file.display(), n + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "use tapegrad::rand / tapegrad::ndarray:\n{}",
        bad.join("\n")
    );
}

#[test]
fn readme_snippets_use_the_re_exports() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut in_rust = false;
    let mut snippets = 0;
    let mut bad = Vec::new();
    for (n, line) in readme.lines().enumerate() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            in_rust = !in_rust && fence.trim() == "rust";
            snippets += usize::from(in_rust);
        } else if in_rust && !bare_paths(line).is_empty() {
            bad.push(format!("README.md:{}: {line}", n + 1));
        }
    }
    assert!(snippets > 0, "no rust snippet found in the README");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
