//! Settings files: a TOML file whose keys are the environment variable names
//! of a service's options (`SEISMO_INGEST_BATCH_MAX_ROWS = 500`).
//!
//! The file's values become the options' defaults, so the precedence is
//! command line > environment variable > settings file > built-in default.
//! Options without an environment variable (positional arguments such as
//! the detector's replay input) cannot be set from the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command, Parser};

/// Environment variable naming the settings file.
pub const SETTINGS_FILE_ENV: &str = "SEISMO_CONFIG_FILE";

/// Long option naming the settings file, without the leading `--`.
pub const SETTINGS_FILE_OPTION: &str = "config-file";

/// A settings file that cannot be read or applied.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}; check the --config-file / SEISMO_CONFIG_FILE path")]
    Read { path: PathBuf, source: std::io::Error },

    #[error("settings file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },

    #[error("settings file {path}: unknown key `{key}`; valid keys are: {}", valid.join(", "))]
    UnknownKey {
        path: PathBuf,
        key: String,
        valid: Vec<String>,
    },

    #[error("settings file {path}: key `{key}` has the invalid value {value}: {reason}; expected {expected}")]
    InvalidValue {
        path: PathBuf,
        key: String,
        value: String,
        reason: String,
        expected: String,
    },

    /// The command line or an environment variable is invalid.
    #[error(transparent)]
    CommandLine(#[from] clap::Error),
}

/// Parses `T` from the process arguments after applying the settings file
/// named by `--config-file` or `SEISMO_CONFIG_FILE`, if any. Prints the error
/// and exits with status 2 on invalid input, as `clap::Parser::parse` does.
pub fn parse_with_settings_file<T: Parser>() -> T {
    match try_parse_with_settings_file(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(SettingsError::CommandLine(error)) => error.exit(),
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    }
}

/// Parses `T` from `argv` (program name first) after applying the settings
/// file named by `--config-file` in `argv` or else by `SEISMO_CONFIG_FILE`.
pub fn try_parse_with_settings_file<T, I, S>(argv: I) -> Result<T, SettingsError>
where
    T: Parser,
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let mut command = T::command();

    if let Some(path) = settings_file_path(&argv) {
        command = apply_settings_file(command, &path)?;
    }

    let matches = command.try_get_matches_from(argv)?;
    Ok(T::from_arg_matches(&matches)?)
}

/// Reads the settings file at `path` and makes each value the default of the
/// option whose environment variable is the key, in `command` and its
/// subcommands. Every value is checked with the option's own parser first.
pub fn apply_settings_file(mut command: Command, path: &Path) -> Result<Command, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|error| SettingsError::Syntax {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;

    let valid = settable_keys(&command);
    for (key, value) in &table {
        if !valid.contains(key) {
            return Err(SettingsError::UnknownKey {
                path: path.to_path_buf(),
                key: key.clone(),
                valid: valid.clone(),
            });
        }

        let values = value_strings(value).ok_or_else(|| {
            invalid_value(
                path,
                key,
                value,
                "unsupported TOML type",
                "a string, number, boolean or array of those",
            )
        })?;
        set_default(&mut command, path, key, value, &values)?;
    }
    Ok(command)
}

/// Finds `--config-file PATH` or `--config-file=PATH` before a `--`, else
/// the `SEISMO_CONFIG_FILE` variable.
fn settings_file_path(argv: &[OsString]) -> Option<PathBuf> {
    let option = format!("--{SETTINGS_FILE_OPTION}");
    let with_value = format!("{option}=");

    let mut tokens = argv.iter().skip(1);
    while let Some(token) = tokens.next() {
        let token = token.to_string_lossy();
        if token == "--" {
            break;
        }
        if token == option {
            return tokens.next().map(PathBuf::from);
        }
        if let Some(path) = token.strip_prefix(&with_value) {
            return Some(PathBuf::from(path));
        }
    }

    std::env::var_os(SETTINGS_FILE_ENV).map(PathBuf::from)
}

/// Environment variable names of `command`'s options and its subcommands',
/// sorted, without the settings file's own variable.
fn settable_keys(command: &Command) -> Vec<String> {
    let mut keys = Vec::new();
    collect_keys(command, &mut keys);
    keys.retain(|key| key != SETTINGS_FILE_ENV);
    keys.sort();
    keys.dedup();
    keys
}

fn collect_keys(command: &Command, keys: &mut Vec<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env() {
            keys.push(env.to_string_lossy().into_owned());
        }
    }
    for subcommand in command.get_subcommands() {
        collect_keys(subcommand, keys);
    }
}

/// Renders a TOML value as the option value(s) clap parses; `None` for
/// tables and datetimes.
fn value_strings(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::String(text) => Some(vec![text.clone()]),
        toml::Value::Integer(number) => Some(vec![number.to_string()]),
        toml::Value::Float(number) => Some(vec![number.to_string()]),
        toml::Value::Boolean(flag) => Some(vec![flag.to_string()]),
        toml::Value::Array(items) => {
            let mut strings = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::Array(_) => return None,
                    other => strings.extend(value_strings(other)?),
                }
            }
            Some(strings)
        }
        toml::Value::Table(_) | toml::Value::Datetime(_) => None,
    }
}

/// Checks `values` with the parser of every option carrying the environment
/// variable `key` and makes them its default.
fn set_default(
    command: &mut Command,
    path: &Path,
    key: &str,
    raw: &toml::Value,
    values: &[String],
) -> Result<(), SettingsError> {
    let matching: Vec<Arg> = command
        .get_arguments()
        .filter(|arg| arg.get_env().is_some_and(|env| env == key))
        .cloned()
        .collect();
    for arg in &matching {
        check_values(arg, values).map_err(|(reason, expected)| invalid_value(path, key, raw, &reason, &expected))?;
        let id = arg.get_id().clone();
        let owned = values.to_vec();
        *command = std::mem::take(command).mut_arg(id, move |arg| arg.default_values(owned));
    }

    for subcommand in command.get_subcommands_mut() {
        set_default(subcommand, path, key, raw, values)?;
    }
    Ok(())
}

/// Parses `values` with a copy of `arg` alone, so the error names the value
/// and not the option's environment variable or default. Returns the reason
/// and the expected format on failure.
fn check_values(arg: &Arg, values: &[String]) -> Result<(), (String, String)> {
    let expected = expected_format(arg);

    if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        return match values {
            [value] if value == "true" || value == "false" => Ok(()),
            _ => Err(("not a boolean".to_string(), "true or false".to_string())),
        };
    }
    if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
        return Err(("more than one value for a single-valued option".to_string(), expected));
    }

    let probe = arg
        .clone()
        .env(None)
        .default_value(None)
        .required(false)
        .index(None)
        .long("value");
    let mut argv = vec!["settings-file".to_string()];
    for value in values {
        argv.push(format!("--value={value}"));
    }
    Command::new("settings-file")
        .arg(probe)
        .try_get_matches_from(argv)
        .map(|_| ())
        .map_err(|error| (clap_reason(&error), expected))
}

/// Extracts the value parser's own message from a clap error, which follows
/// "invalid value '…' for '…': " on its first line.
fn clap_reason(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first_line = rendered.lines().next().unwrap_or_default();
    let reason = first_line.rsplit_once("': ").map_or(first_line, |(_, reason)| reason);
    reason.trim_start_matches("error: ").to_string()
}

/// Describes the values `arg` accepts: its possible values, if any, and the
/// first line of its help, which states the unit.
fn expected_format(arg: &Arg) -> String {
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|value| value.get_name().to_string())
        .collect();
    let help = arg.get_help().map(|help| help.to_string()).unwrap_or_default();
    let first_sentence = help.lines().next().unwrap_or_default().to_string();

    if possible.is_empty() {
        first_sentence
    } else {
        format!("one of {} ({first_sentence})", possible.join(", "))
    }
}

fn invalid_value(path: &Path, key: &str, raw: &toml::Value, reason: &str, expected: &str) -> SettingsError {
    SettingsError::InvalidValue {
        path: path.to_path_buf(),
        key: key.to_string(),
        value: raw.to_string(),
        reason: reason.to_string(),
        expected: expected.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    /// Options of every kind the services use.
    #[derive(Debug, Parser)]
    struct Options {
        #[arg(long, env = "SETTINGS_TEST_COUNT", default_value_t = 1)]
        count: u32,
        #[arg(long, env = "SETTINGS_TEST_FLAG")]
        flag: bool,
        #[arg(long, env = "SETTINGS_TEST_LIST", value_delimiter = ',')]
        list: Vec<String>,
        #[arg(long, env = "SETTINGS_TEST_NAME")]
        name: Option<String>,
    }

    fn argv(tokens: &[&str]) -> Vec<OsString> {
        tokens.iter().map(OsString::from).collect()
    }

    fn apply(test: &str, contents: &str) -> Result<Command, SettingsError> {
        let path = std::env::temp_dir().join(format!("seismo-settings-unit-{}-{test}.toml", std::process::id()));
        std::fs::write(&path, contents).expect("the temp dir is writable");
        apply_settings_file(Options::command(), &path)
    }

    fn parse(command: Command, tokens: &[&str]) -> Options {
        let matches = command.try_get_matches_from(argv(tokens)).expect("arguments are valid");
        Options::from_arg_matches(&matches).expect("matches fit the options")
    }

    #[test]
    fn path_comes_from_either_option_form() {
        let separate = argv(&["prog", "--count", "2", "--config-file", "a.toml"]);
        let joined = argv(&["prog", "--config-file=b.toml"]);
        let after_separator = argv(&["prog", "--", "--config-file", "c.toml"]);

        assert_eq!(settings_file_path(&separate), Some(PathBuf::from("a.toml")));
        assert_eq!(settings_file_path(&joined), Some(PathBuf::from("b.toml")));
        if std::env::var_os(SETTINGS_FILE_ENV).is_none() {
            assert_eq!(settings_file_path(&after_separator), None);
        }
    }

    #[test]
    fn file_values_become_defaults() {
        let command = apply(
            "defaults",
            "SETTINGS_TEST_COUNT = 7\nSETTINGS_TEST_FLAG = true\nSETTINGS_TEST_LIST = [\"a\", \"b\"]\nSETTINGS_TEST_NAME = \"x\"\n",
        )
        .unwrap();

        let options = parse(command, &["prog", "--count", "9"]);

        assert_eq!(options.count, 9, "the command line wins");
        assert!(options.flag);
        assert_eq!(options.list, ["a", "b"]);
        assert_eq!(options.name.as_deref(), Some("x"));
    }

    #[test]
    fn list_in_one_string_is_split() {
        let command = apply("list_string", "SETTINGS_TEST_LIST = \"a,b,c\"\n").unwrap();

        assert_eq!(parse(command, &["prog"]).list, ["a", "b", "c"]);
    }

    #[test]
    fn unsupported_values_are_rejected() {
        let table = apply("table", "[SETTINGS_TEST_NAME]\nvalue = 1\n").unwrap_err();
        assert!(table.to_string().contains("unsupported TOML type"), "{table}");

        let several = apply("several", "SETTINGS_TEST_COUNT = [1, 2]\n").unwrap_err();
        assert!(several.to_string().contains("more than one value"), "{several}");

        let negative = apply("negative", "SETTINGS_TEST_COUNT = -1\n").unwrap_err();
        assert!(
            negative
                .to_string()
                .contains("`SETTINGS_TEST_COUNT` has the invalid value -1"),
            "{negative}"
        );
    }

    #[test]
    fn invalid_toml_is_reported() {
        let error = apply("syntax", "SETTINGS_TEST_COUNT = \n").unwrap_err();

        assert!(matches!(error, SettingsError::Syntax { .. }), "{error:?}");
    }
}
