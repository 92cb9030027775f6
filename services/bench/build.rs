//! Records the commit the benchmark is built from (`CASELINK_BENCH_COMMIT`) and whether the working tree had
//! uncommitted changes then (`CASELINK_BENCH_DIRTY`), so a run's JSON names the code it measured wherever the binary
//! is started from. Rerun when the checkout moves (HEAD, refs, index) or any source of the workspace changes; without
//! git (a source tarball) both are empty and the report says "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    println!("cargo:rerun-if-changed=build.rs");
    // The sources whose change makes the tree dirty (target/ is not watched: it changes with every build).
    for watched in [
        "services",
        "shared",
        "proto",
        "third_party",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let git_dir = git(&root, &["rev-parse", "--absolute-git-dir"]);
    if let Some(git_dir) = &git_dir {
        let git_dir = Path::new(git_dir);
        // Only what exists: cargo counts a missing path as changed, so a checkout without `packed-refs` would rerun
        // this (and rebuild the bench) on every build. A `git gc` that creates it also moves `refs`.
        for moved in ["HEAD", "index", "packed-refs", "refs"] {
            let path = git_dir.join(moved);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let commit = git_dir
        .as_ref()
        .and_then(|_| git(&root, &["rev-parse", "HEAD"]))
        .unwrap_or_default();
    let dirty = match git(&root, &["status", "--porcelain", "--untracked-files=no"]) {
        Some(status) if !commit.is_empty() => (!status.is_empty()).to_string(),
        _ => String::new(),
    };
    println!("cargo:rustc-env=CASELINK_BENCH_COMMIT={commit}");
    println!("cargo:rustc-env=CASELINK_BENCH_DIRTY={dirty}");
}
