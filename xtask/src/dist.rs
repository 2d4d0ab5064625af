//! `cargo xtask dist`: the static release binary.
//!
//! Builds `llmrouter` with every router found for `x86_64-unknown-linux-musl` (adding the target
//! with rustup when it is missing) and checks that the result has no dynamic loader (no
//! `PT_INTERP` program header), i.e. that it is statically linked.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

const TARGET: &str = "x86_64-unknown-linux-musl";

/// Entry point.
pub fn run(root: &Path) -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) => {}
        Ok(_) => {
            println!("adding the {TARGET} target with rustup");
            let status = Command::new("rustup").args(["target", "add", TARGET]).status().context("running rustup")?;
            if !status.success() {
                bail!("`rustup target add {TARGET}` failed");
            }
        }
        Err(e) => println!("rustup not found ({e}); assuming the {TARGET} standard library is installed"),
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "llmrouter-cli", "--target", TARGET])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("the release build failed");
    }
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let binary = target_dir.join(TARGET).join("release/llmrouter");
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    if has_interpreter(&bytes)? {
        bail!("{} asks for a dynamic loader: it is not statically linked", binary.display());
    }
    println!("static binary: {} ({:.1} MiB)", binary.display(), bytes.len() as f64 / (1024.0 * 1024.0));
    Ok(())
}

/// Whether a 64-bit little-endian ELF file has a `PT_INTERP` program header.
pub fn has_interpreter(elf: &[u8]) -> Result<bool> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        bail!("not a 64-bit little-endian ELF file");
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().context("header")?) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(elf.get(at..at + 4).context("truncated program header")?.try_into()?);
        if p_type == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_test_binary_is_recognised() {
        let exe = std::env::current_exe().expect("exe");
        let bytes = std::fs::read(exe).expect("read");
        // Test binaries are built for the host, dynamically linked against glibc.
        assert!(super::has_interpreter(&bytes).expect("elf"));
        assert!(super::has_interpreter(b"not an elf file at all, definitely not, no no no no no no no no no").is_err());
    }
}
