//! Colours. **Key decision: colour is decided once per stream at start-up** — on only when
//! that stream is a terminal, never when `NO_COLOR` is set (to anything but empty), and
//! `--color always|never` overrides both — so pipes, files and CI logs never see escape
//! codes and no output code has to think about it.

use std::io::IsTerminal;
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};

/// The `--color` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

static ON: OnceLock<(bool, bool)> = OnceLock::new();

/// Decides colour for stdout and stderr; later calls have no effect.
pub fn init(choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let auto = |tty: bool| tty && !no_color;
    let _ = ON.get_or_init(|| match choice {
        ColorChoice::Always => (true, true),
        ColorChoice::Never => (false, false),
        ColorChoice::Auto => (
            auto(std::io::stdout().is_terminal()),
            auto(std::io::stderr().is_terminal()),
        ),
    });
}

/// Whether stderr gets colour (for the logger).
pub fn stderr_on() -> bool {
    ON.get().is_some_and(|o| o.1)
}

fn paint(on: bool, style: Style, text: &str) -> String {
    if on {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// Table headers on stdout.
pub fn header(text: &str) -> String {
    paint(ON.get().is_some_and(|o| o.0), Style::new().bold(), text)
}

/// The `error:` prefix on stderr.
pub fn error_prefix() -> String {
    let s = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    paint(stderr_on(), s, "error:")
}

/// The `hint:` prefix on stderr.
pub fn hint_prefix() -> String {
    let s = Style::new().bold().fg_color(Some(AnsiColor::Cyan.into()));
    paint(stderr_on(), s, "hint:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painting_is_plain_when_off() {
        assert_eq!(paint(false, Style::new().bold(), "PID"), "PID");
        let on = paint(true, Style::new().bold(), "PID");
        assert!(on.starts_with('\u{1b}') && on.contains("PID") && on.ends_with('m'));
    }
}
