//! `cargo xtask dist`: the static release binary.
//!
//! Builds `llmrouter` with every router found for `x86_64-unknown-linux-musl` (adding the target
//! with rustup when it is missing) and checks that the result has no dynamic loader (no
//! `PT_INTERP` program header), i.e. that it is statically linked. Before building it checks
//! for a musl C compiler (ring, under rustls, compiles C), which a fresh machine often lacks.

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
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path).collect();
    if let Err(missing) = musl_c_compiler(|name| std::env::var_os(name), &dirs) {
        bail!("{missing}");
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

/// The C compilers cc-rs tries for the musl target when no variable names one, in its order.
const MUSL_COMPILERS: [&str; 2] = ["x86_64-linux-musl-gcc", "musl-gcc"];

/// The C compiler the musl build will use: one named by a variable cc-rs reads, or the first of
/// [`MUSL_COMPILERS`] found in `path`. Without one, the message says what to install.
pub fn musl_c_compiler(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
    path: &[std::path::PathBuf],
) -> std::result::Result<String, String> {
    for name in ["CC_x86_64_unknown_linux_musl", "CC_x86_64-unknown-linux-musl", "TARGET_CC"] {
        if let Some(cc) = var(name).filter(|v| !v.is_empty()) {
            return Ok(cc.to_string_lossy().into_owned());
        }
    }
    for compiler in MUSL_COMPILERS {
        if path.iter().any(|dir| dir.join(compiler).is_file()) {
            return Ok(compiler.to_owned());
        }
    }
    Err(format!(
        "no musl C compiler: the static build compiles C code (ring, used by the model client's TLS) and \
         needs `{}` or `{}` on PATH. On Debian or Ubuntu: `sudo apt-get install musl-tools`; elsewhere, \
         install musl's gcc wrapper or name a compiler in CC_x86_64_unknown_linux_musl.",
        MUSL_COMPILERS[0], MUSL_COMPILERS[1]
    ))
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
    fn a_missing_musl_compiler_says_what_to_install() {
        let empty = std::env::temp_dir().join(format!("xtask-dist-empty-{}", std::process::id()));
        std::fs::create_dir_all(&empty).expect("dir");
        let missing = super::musl_c_compiler(|_| None, &[empty.clone()]).expect_err("no compiler");
        assert!(missing.contains("musl-tools") && missing.contains("musl-gcc"), "{missing}");
        // A variable naming one wins over PATH.
        let named = super::musl_c_compiler(|n| (n == "TARGET_CC").then(|| "clang".into()), &[empty.clone()]);
        assert_eq!(named.as_deref(), Ok("clang"));
        // Debian's musl-tools installs musl-gcc.
        std::fs::write(empty.join("musl-gcc"), "#!/bin/sh\n").expect("write");
        assert_eq!(super::musl_c_compiler(|_| None, &[empty.clone()]).as_deref(), Ok("musl-gcc"));
        std::fs::remove_dir_all(&empty).expect("clean");
    }

    #[test]
    fn this_test_binary_is_recognised() {
        let exe = std::env::current_exe().expect("exe");
        let bytes = std::fs::read(exe).expect("read");
        // Test binaries are built for the host, dynamically linked against glibc.
        assert!(super::has_interpreter(&bytes).expect("elf"));
        assert!(super::has_interpreter(b"not an elf file at all, definitely not, no no no no no no no no no").is_err());
    }
}
