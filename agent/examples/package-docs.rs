//! Writes what the Debian package ships besides the binaries, from the clap definitions:
//! `man/warrant.1` with one page per subcommand (`warrant-keys.1`, ...), `man/warrantd.8`,
//! `man/warrantd.toml.5` (around docs/agent.example.toml), and completions for bash, zsh and
//! fish under `completions/`.
//!
//! Usage: `cargo run -p warrant-agent --example package-docs -- OUT_DIR`

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: package-docs OUT_DIR");
        std::process::exit(2);
    };
    let man = out.join("man");
    let completions = out.join("completions");
    fs::create_dir_all(&man)?;
    fs::create_dir_all(&completions)?;

    // warrant(1) and a page per subcommand, the way git documents itself.
    clap_mangen::generate_to(warrant_cli::Cli::command(), &man)?;
    let daemon = warrant_agent::daemon::Args::command();
    let mut page = fs::File::create(man.join("warrantd.8"))?;
    clap_mangen::Man::new(daemon).section("8").render(&mut page)?;
    config_page(&man.join("warrantd.toml.5"))?;

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut warrant_cli::Cli::command(), "warrant", &completions)?;
        clap_complete::generate_to(
            shell,
            &mut warrant_agent::daemon::Args::command(),
            "warrantd",
            &completions,
        )?;
    }
    Ok(())
}

/// warrantd.toml(5): the commented example configuration is the reference.
fn config_page(path: &Path) -> std::io::Result<()> {
    let example = include_str!("../../docs/agent.example.toml");
    let escaped: String = example
        .lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            // A line starting with . or ' would be a roff request.
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let mut f = fs::File::create(path)?;
    write!(
        f,
        ".TH WARRANTD.TOML 5 \"\" \"warrant {version}\"\n\
         .SH NAME\nwarrantd.toml \\- configuration of warrantd, the warrant signing daemon\n\
         .SH SYNOPSIS\n/etc/warrant/agent.toml (system mode), $XDG_CONFIG_HOME/warrant/agent.toml (user mode)\n\
         .SH DESCRIPTION\nTOML. Unknown keys are errors; \\fBwarrantd \\-\\-check\\-config\\fR names the file, line and key \
         of every mistake. SIGHUP reloads rules, limits and audit fsync settings; the socket, state directory, key store and \
         audit destinations need a restart.\n\
         .PP\nRules are evaluated in order and the first that matches decides; a request no rule allows is refused \
         (\\fBdefault-deny\\fR). The [admin] section allows the authority's operations.\n\
         .SH EXAMPLE\nEvery setting, with its default or an example value:\n.PP\n.nf\n{escaped}.fi\n\
         .SH SEE ALSO\n\\fBwarrantd\\fR(8), \\fBwarrant\\fR(1)\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}
