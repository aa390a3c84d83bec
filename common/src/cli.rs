//! Flags every tool shares, and value parsers for flags of many tools.

use std::ffi::OsString;
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
    // The env-settable booleans take 1/0, yes/no, on/off as well as true/false
    // (clap's default bool parser refuses SHIPKIT_PRETTY=1), as img-build's and
    // img-push's own flags do.
    #[arg(
        long,
        env = "SHIPKIT_PRETTY",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub pretty: bool,

    /// Print only errors on stderr (-v on the command line beats SHIPKIT_QUIET).
    #[arg(
        short,
        long,
        env = "SHIPKIT_QUIET",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub quiet: bool,

    /// Print more on stderr (every attempt, every request); twice for library logs too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl CommonArgs {
    /// Settles `-q` against `-v` once the flags are parsed: both on the command line are a
    /// usage error, while `SHIPKIT_QUIET` with `-v` means `-v` (the command line beats the
    /// environment). clap's `conflicts_with` cannot say this: it takes a variable set to
    /// off (`SHIPKIT_QUIET=0`) as a `-q` that was given.
    fn settle_verbosity(&mut self, matches: &clap::ArgMatches) -> Result<(), &'static str> {
        if !self.quiet || self.verbose == 0 {
            return Ok(());
        }
        if matches.value_source("quiet") == Some(clap::parser::ValueSource::CommandLine) {
            return Err("--quiet and --verbose cannot be used together");
        }
        self.quiet = false;
        Ok(())
    }
}

/// Parses a tool's flags `A` from `argv` (program name first), as `clap::Parser::try_parse_from`
/// does, and returns them with the shared flags (reached through `common`) settled.
pub(crate) fn parse_args<A: clap::Parser>(
    argv: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    common: fn(&A) -> &CommonArgs,
) -> Result<(A, CommonArgs), clap::Error> {
    let mut command = A::command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let args = A::from_arg_matches(&matches).map_err(|err| err.format(&mut command))?;
    let mut shared = common(&args).clone();
    shared
        .settle_verbosity(&matches)
        .map_err(|message| command.error(clap::error::ErrorKind::ArgumentConflict, message))?;
    Ok((args, shared))
}

/// What a tool prints about itself instead of running: its shell completions or its man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// `--completions SHELL`: the completion script for bash, zsh, fish, elvish or powershell.
    Completions(clap_complete::Shell),
    /// `--man`: the man page (roff), section 1.
    Man,
}

/// Recognises the hidden `TOOL --completions SHELL` (or `--completions=SHELL`) and `TOOL --man`,
/// which `make dist` and packagers use. They must stand alone, and are looked for before clap
/// parses: a tool's required flags (`ecs-roll --cluster`) and flags set from the environment
/// (`HEALTH_WAIT_TIMEOUT`) must not stand in their way. `None`: an ordinary run.
pub(crate) fn generated_request(
    argv: &[impl AsRef<std::ffi::OsStr>],
) -> Option<Result<Generated, String>> {
    let args: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(|arg| arg.as_ref().to_str().unwrap_or(""))
        .collect();
    let shell = match args.as_slice() {
        ["--man"] => return Some(Ok(Generated::Man)),
        [first, ..] if *first == "--man" => {
            return Some(Err("--man takes no other arguments".to_owned()));
        }
        ["--completions", shell] => *shell,
        [first] if first.starts_with("--completions=") => &first["--completions=".len()..],
        [first, ..] if first.starts_with("--completions") => {
            return Some(Err(
                "--completions takes one shell and no other arguments: --completions bash|zsh|fish"
                    .to_owned(),
            ));
        }
        _ => return None,
    };
    Some(
        shell
            .parse::<clap_complete::Shell>()
            .map(Generated::Completions)
            .map_err(|_| {
                format!(
                    "--completions: unknown shell {shell:?} (bash, zsh, fish, elvish, powershell)"
                )
            }),
    )
}

/// The completion script or man page of the tool whose flags are `A`, installed as `name`.
pub(crate) fn generate<A: clap::CommandFactory>(what: Generated, name: &'static str) -> Vec<u8> {
    let mut command = A::command().name(name).bin_name(name);
    let mut out = Vec::new();
    match what {
        Generated::Completions(shell) => {
            clap_complete::generate(shell, &mut command, name, &mut out);
        }
        // The workspace's version (every crate shares it): release-tag's own `--version` is a
        // flag of its own, so clap knows no version for it.
        Generated::Man => clap_mangen::Man::new(command)
            .source(format!("shipkit {}", env!("CARGO_PKG_VERSION")))
            .manual("shipkit")
            .render(&mut out)
            .expect("rendering into memory cannot fail"),
    }
    out
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

/// Whether `value` differs from `default`, a duration as a flag's `default_value` spells it.
pub fn differs_from_default(value: Duration, default: &str) -> bool {
    parse_duration(default) != Ok(value)
}

/// Warns of each flag in `flags` that is set while `moot` (a waiting flag under `--no-wait`):
/// a warning, not a conflict, since a job's environment may set such flags for every run and
/// clap counts an environment variable as given. Returns the flags warned of.
pub fn warn_moot_flags(moot: &str, flags: &[(&'static str, bool)]) -> Vec<&'static str> {
    let set: Vec<&'static str> = flags
        .iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| *f)
        .collect();
    for flag in &set {
        tracing::warn!("{flag} has no effect with {moot}");
    }
    set
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

    /// A tool's `Args` reduced to the shared flags.
    #[derive(Debug, clap::Parser)]
    struct Args {
        #[command(flatten)]
        common: CommonArgs,
    }

    const CHILD_FLAGS: &str = "SHIPKIT_CLI_TEST_FLAGS";
    const CHILD_EXPECT: &str = "SHIPKIT_CLI_TEST_EXPECT";

    /// What parsing `flags` gives, in a few words: `pretty quiet verbose=N` or `error`.
    fn outcome(flags: &[&str]) -> String {
        let argv = std::iter::once("tool").chain(flags.iter().copied());
        match parse_args::<Args>(argv, |args| &args.common) {
            Ok((_, common)) => format!(
                "pretty={} quiet={} verbose={}",
                common.pretty, common.quiet, common.verbose
            ),
            Err(err) => format!("error: {:?}", err.kind()),
        }
    }

    /// Parses `flags` with the variables `env` set (and no other SHIPKIT_ variable) and
    /// expects `expected`. clap reads the process environment, which a test may not change
    /// (`set_var` is unsafe while other tests run in threads): the case runs in this test
    /// binary started again as a child, which runs only [`parse_in_child`]. Returns whether
    /// the child's test passed, and what it printed.
    fn run_child(env: &[(&str, &str)], flags: &[&str], expected: &str) -> (bool, String) {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "cli::tests::parse_in_child", "--test-threads=1"])
            .env_remove("SHIPKIT_PRETTY")
            .env_remove("SHIPKIT_QUIET")
            .envs(env.iter().copied())
            .env(CHILD_FLAGS, flags.join("\n"))
            .env(CHILD_EXPECT, expected)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        (
            out.status.success() && text.contains("1 passed"),
            text.into_owned(),
        )
    }

    /// Asserts what parsing `flags` gives with the variables `env` set: [`run_child`].
    #[track_caller]
    fn assert_parses(env: &[(&str, &str)], flags: &[&str], expected: &str) {
        let (passed, text) = run_child(env, flags, expected);
        assert!(passed, "env {env:?}, flags {flags:?}:\n{text}");
    }

    /// Both sides of [`assert_parses`]. In the child (the variables set) it parses and
    /// asserts. Run as an ordinary test it checks the round trip itself: the child sees the
    /// environment it is given, a right expectation passes there and a wrong one fails, so
    /// the tests built on [`assert_parses`] can fail.
    #[test]
    fn parse_in_child() {
        if let (Ok(flags), Ok(expected)) = (std::env::var(CHILD_FLAGS), std::env::var(CHILD_EXPECT))
        {
            let flags: Vec<&str> = flags.split('\n').filter(|f| !f.is_empty()).collect();
            assert_eq!(outcome(&flags), expected);
            return;
        }
        let pretty = [("SHIPKIT_PRETTY", "1")];
        assert_parses(&pretty, &["-vv"], "pretty=true quiet=false verbose=2");
        let (passed, text) = run_child(&pretty, &["-vv"], "pretty=false quiet=false verbose=2");
        assert!(!passed, "a wrong expectation passed in the child:\n{text}");
        assert!(
            text.contains("pretty=true quiet=false verbose=2"),
            "the child says what it parsed:\n{text}"
        );
    }

    #[test]
    fn boolean_flags_from_the_environment_accept_1_0_yes_no() {
        for on in ["1", "true", "yes", "on", "TRUE"] {
            assert_parses(
                &[("SHIPKIT_PRETTY", on)],
                &[],
                "pretty=true quiet=false verbose=0",
            );
            assert_parses(
                &[("SHIPKIT_QUIET", on)],
                &[],
                "pretty=false quiet=true verbose=0",
            );
        }
        for off in ["0", "false", "no", "off"] {
            assert_parses(
                &[("SHIPKIT_PRETTY", off)],
                &[],
                "pretty=false quiet=false verbose=0",
            );
            assert_parses(
                &[("SHIPKIT_QUIET", off)],
                &[],
                "pretty=false quiet=false verbose=0",
            );
        }
        assert_parses(
            &[("SHIPKIT_PRETTY", "maybe")],
            &[],
            "error: ValueValidation",
        );
    }

    #[test]
    fn boolean_flags_on_the_command_line() {
        assert_eq!(outcome(&[]), "pretty=false quiet=false verbose=0");
        assert_eq!(
            outcome(&["--pretty", "-q"]),
            "pretty=true quiet=true verbose=0"
        );
        assert_eq!(outcome(&["-q", "-v"]), "error: ArgumentConflict");
        assert_parses(
            &[("SHIPKIT_PRETTY", "0")],
            &["--pretty"],
            "pretty=true quiet=false verbose=0",
        );
        // A variable that says off is not a -q: it does not conflict with -v.
        assert_parses(
            &[("SHIPKIT_QUIET", "0")],
            &["-v"],
            "pretty=false quiet=false verbose=1",
        );
        // The command line beats the environment.
        assert_parses(
            &[("SHIPKIT_QUIET", "1")],
            &["-v"],
            "pretty=false quiet=false verbose=1",
        );
        assert_parses(
            &[("SHIPKIT_QUIET", "1")],
            &["-q", "-v"],
            "error: ArgumentConflict",
        );
    }

    #[test]
    fn completions_and_man_page_are_asked_for_alone() {
        let ask = |args: &[&str]| generated_request(&[&["tool"], args].concat());
        assert_eq!(
            ask(&["--completions", "zsh"]),
            Some(Ok(Generated::Completions(clap_complete::Shell::Zsh)))
        );
        assert_eq!(
            ask(&["--completions=fish"]),
            Some(Ok(Generated::Completions(clap_complete::Shell::Fish)))
        );
        assert_eq!(ask(&["--man"]), Some(Ok(Generated::Man)));
        assert_eq!(ask(&[]), None);
        assert_eq!(
            ask(&["--pretty", "--man"]),
            None,
            "clap refuses it as usual"
        );
        let err = ask(&["--completions", "tcsh"]).unwrap().unwrap_err();
        assert!(err.contains("unknown shell \"tcsh\""), "{err}");
        assert!(ask(&["--completions"]).unwrap().is_err());
        assert!(ask(&["--completions", "bash", "-v"]).unwrap().is_err());
        assert!(ask(&["--man", "x"]).unwrap().is_err());
    }

    #[test]
    fn completions_and_man_page_name_the_tool_and_its_flags() {
        let bash = String::from_utf8(generate::<Args>(
            Generated::Completions(clap_complete::Shell::Bash),
            "some-tool",
        ))
        .unwrap();
        assert!(
            bash.contains("complete -F _some__tool -o nosort -o bashdefault -o default some-tool"),
            "{bash}"
        );
        assert!(bash.contains("--pretty"), "{bash}");
        let man = String::from_utf8(generate::<Args>(Generated::Man, "some-tool")).unwrap();
        assert!(man.starts_with(".ie \\n(.g .ds Aq"), "{man}");
        assert!(
            man.contains(&format!(
                ".TH some-tool 1  \"shipkit {}\" shipkit",
                env!("CARGO_PKG_VERSION")
            )),
            "{man}"
        );
        assert!(man.contains("\\-\\-pretty"), "{man}");
    }

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
