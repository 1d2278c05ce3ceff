//! `jnet completions bash|zsh|fish`: the script is printed without any
//! configuration file (packagers generate it at build time), and it knows
//! every subcommand and long option the CLI has, read from clap itself so a
//! command added later is covered without touching this test.

use std::process::Command;

use clap::CommandFactory;
use jnet::cli::Cli;

/// Every subcommand path (`pf reload` as `["pf", "reload"]`) and every long
/// option of the CLI, clap's own `help` excluded.
fn cli_names() -> (Vec<String>, Vec<String>) {
    fn walk(cmd: &clap::Command, subs: &mut Vec<String>, longs: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                if !longs.iter().any(|x| x == l) {
                    longs.push(l.to_string());
                }
            }
        }
        for s in cmd.get_subcommands() {
            if s.get_name() != "help" {
                subs.push(s.get_name().to_string());
                walk(s, subs, longs);
            }
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let (mut subs, mut longs) = (vec![], vec![]);
    walk(&cmd, &mut subs, &mut longs);
    (subs, longs)
}

/// `word` occurs in `text` delimited by characters that cannot be part of a
/// command or option name.
fn has_word(text: &str, word: &str) -> bool {
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(name_char) && !after.is_some_and(name_char)
    })
}

fn completions(shell: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_jnet"))
        // why: no jnet.toml exists where a port builds its completion files.
        .args(["-c", "/nonexistent/jnet.toml", "completions", shell])
        .env_remove("JNET_CONFIG")
        .env_remove("JNET_STATE_DIR")
        .output()
        .unwrap()
}

#[test]
fn each_shell_knows_every_subcommand_and_long_option() {
    let (subs, longs) = cli_names();
    assert!(subs.len() >= 20 && subs.iter().any(|s| s == "completions"), "{subs:?}");
    assert!(longs.iter().any(|l| l == "state-dir"), "{longs:?}");
    for shell in ["bash", "zsh", "fish"] {
        let o = completions(shell);
        assert!(
            o.status.success(),
            "{shell}: exit {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        let text = String::from_utf8(o.stdout).unwrap();
        assert!(text.len() > 1000, "{shell}: {} bytes", text.len());
        for s in &subs {
            assert!(has_word(&text, s), "{shell} completion does not mention subcommand {s}");
        }
        for l in &longs {
            // fish spells a long option `-l name`, bash and zsh `--name`.
            let found = match shell {
                "fish" => text.contains(&format!("-l {l}")),
                _ => text.contains(&format!("--{l}")),
            };
            assert!(found, "{shell} completion does not offer --{l}");
        }
    }
}

#[test]
fn the_word_check_is_not_fooled_by_longer_names() {
    assert!(has_word("a 'pf reload' b", "reload"));
    assert!(!has_word("jail-conf", "jail"));
    assert!(!has_word("unexpose", "expose"));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let o = completions("ksh");
    assert_eq!(o.status.code(), Some(64));
    assert!(o.stdout.is_empty());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ksh") && err.contains("bash"), "{err}");
}

/// A reader that goes away (`jnet ... | head`) ends jnet as it ends any
/// Unix filter, by SIGPIPE, never with a panic on EPIPE.
#[test]
fn a_closed_stdout_ends_jnet_by_sigpipe_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_jnet"))
        .args(["-c", "/nonexistent/jnet.toml", "completions", "bash"])
        .env_remove("JNET_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before jnet writes its first byte.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.signal(),
        Some(nix::sys::signal::Signal::SIGPIPE as i32),
        "{:?} {err}",
        out.status
    );
}
