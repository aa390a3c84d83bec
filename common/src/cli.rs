//! Flags every tool shares, and value parsers for flags of many tools.

use std::path::PathBuf;
use std::time::Duration;

/// Input/output and verbosity flags, flattened into every tool's `Args`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Input and output")]
pub struct CommonArgs {
    /// Read the input envelope from FILE instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Write the output envelope to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Indent the output JSON.
    #[arg(long, env = "SHIPKIT_PRETTY")]
    pub pretty: bool,

    /// Print only errors on stderr.
    #[arg(short, long, env = "SHIPKIT_QUIET", conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more on stderr (every attempt, every request); twice for library logs too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Parses a duration such as `90s`, `10m`, `1h30m`, `250ms`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("invalid duration {text:?} (expected e.g. 90s, 10m, 1h30m, 250ms)"))
}

/// Parses `KEY=VALUE`, refusing an empty key.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        let err = parse_duration("5x").unwrap_err();
        assert!(err.contains("expected e.g. 90s"), "{err}");
    }

    #[test]
    fn key_values_need_a_key() {
        assert_eq!(parse_key_value("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_key_value("A="), Ok(("A".into(), String::new())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
