//! Settings files of the services: values from the file, overridden by
//! environment variables and the command line, and the errors for unknown
//! keys and invalid values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use seismo_detector::cli::{Cli, Command};
use seismo_ingest::IngestArgs;
use seismo_notifier::cli::NotifierArgs;
use seismo_telemetry::{LogFormat, SETTINGS_FILE_ENV, SettingsError, try_parse_with_settings_file};

/// Serializes the tests of this file, because they set process-wide
/// environment variables that the parsers read.
static ENVIRONMENT: Mutex<()> = Mutex::new(());

/// Sets environment variables for one test and removes them when dropped.
struct ScopedEnv {
    names: Vec<&'static str>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl ScopedEnv {
    fn new(variables: &[(&'static str, &str)]) -> ScopedEnv {
        let lock = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, value) in variables {
            // SAFETY: the tests of this binary hold ENVIRONMENT while they touch
            // the environment, and no other thread of the binary reads it then.
            unsafe { std::env::set_var(name, value) };
        }
        ScopedEnv {
            names: variables.iter().map(|(name, _)| *name).collect(),
            _lock: lock,
        }
    }
}

impl Drop for ScopedEnv {
    fn drop(&mut self) {
        for name in &self.names {
            // SAFETY: as in ScopedEnv::new, the lock is still held.
            unsafe { std::env::remove_var(name) };
        }
    }
}

/// Writes `contents` to a file unique to this process and test.
fn settings_file(test: &str, contents: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("seismo-settings-{}-{test}.toml", std::process::id()));
    std::fs::write(&path, contents).expect("the temp dir is writable");
    path
}

#[test]
fn ingest_precedence_file_env_command_line() {
    let path = settings_file(
        "ingest_precedence",
        r#"
        SEISMO_INGEST_BATCH_MAX_ROWS = 500
        SEISMO_INGEST_BATCH_MAX_WAIT_MS = 250
        SEISMO_INGEST_INSERT_TIMEOUT_MS = 1234
        SEISMO_INGEST_ASYNC_INSERT = true
        SEISMO_INGEST_KAFKA_PROPERTIES = ["security.protocol=SSL", "client.id=a=b"]
        "#,
    );
    let _env = ScopedEnv::new(&[("SEISMO_INGEST_BATCH_MAX_WAIT_MS", "300")]);

    let args: IngestArgs = try_parse_with_settings_file([
        "seismo-ingest",
        "--config-file",
        path.to_str().unwrap(),
        "--batch-max-rows",
        "700",
    ])
    .unwrap();

    assert_eq!(args.batch_max_rows, 700, "the command line wins over the file");
    assert_eq!(args.batch_max_wait_ms, 300, "the environment wins over the file");
    assert_eq!(args.insert_timeout_ms, 1234, "the file wins over the built-in default");
    assert!(args.async_insert, "a boolean flag is set from the file");
    assert_eq!(
        args.kafka_properties,
        [
            ("security.protocol".to_string(), "SSL".to_string()),
            ("client.id".to_string(), "a=b".to_string())
        ]
    );
    assert_eq!(
        args.retry_max_backoff_ms, 30_000,
        "a key missing from the file keeps its default"
    );
}

#[test]
fn settings_file_from_environment_variable() {
    let path = settings_file("from_environment", "SEISMO_INGEST_TABLE = \"events_from_file\"\n");
    let _env = ScopedEnv::new(&[(SETTINGS_FILE_ENV, path.to_str().unwrap())]);

    let args: IngestArgs = try_parse_with_settings_file(["seismo-ingest"]).unwrap();

    assert_eq!(args.table, "events_from_file");
    assert_eq!(args.config_file, Some(path));
}

#[test]
fn unknown_key_is_named_with_valid_keys() {
    let path = settings_file("unknown_key", "SEISMO_INGEST_BATCH_ROWS = 10\n");
    let _env = ScopedEnv::new(&[]);

    let error = try_parse_with_settings_file::<IngestArgs, _, _>([
        "seismo-ingest",
        &format!("--config-file={}", path.display()),
    ])
    .unwrap_err();

    assert!(matches!(error, SettingsError::UnknownKey { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("unknown key `SEISMO_INGEST_BATCH_ROWS`"), "{message}");
    assert!(message.contains("SEISMO_INGEST_BATCH_MAX_ROWS"), "{message}");
    assert!(message.contains("CLICKHOUSE_URL"), "{message}");
    assert!(!message.contains("SEISMO_CONFIG_FILE,"), "{message}");
}

#[test]
fn invalid_value_names_key_value_and_format() {
    let path = settings_file("invalid_value", "SEISMO_INGEST_BATCH_MAX_ROWS = \"many\"\n");
    let _env = ScopedEnv::new(&[]);

    let error =
        try_parse_with_settings_file::<IngestArgs, _, _>(["seismo-ingest", "--config-file", path.to_str().unwrap()])
            .unwrap_err();

    let message = error.to_string();
    assert!(matches!(error, SettingsError::InvalidValue { .. }), "{error:?}");
    assert!(message.contains("`SEISMO_INGEST_BATCH_MAX_ROWS`"), "{message}");
    assert!(message.contains("\"many\""), "{message}");
    assert!(message.contains("invalid digit"), "{message}");
    assert!(message.contains("Maximum messages per batch"), "{message}");
}

#[test]
fn invalid_boolean_and_choice_are_rejected() {
    let _env = ScopedEnv::new(&[]);

    let flag = settings_file("invalid_flag", "SEISMO_INGEST_ASYNC_INSERT = \"sometimes\"\n");
    let error =
        try_parse_with_settings_file::<IngestArgs, _, _>(["seismo-ingest", "--config-file", flag.to_str().unwrap()])
            .unwrap_err();
    assert!(error.to_string().contains("true or false"), "{error}");

    let choice = settings_file("invalid_choice", "SEISMO_INGEST_AUTO_OFFSET_RESET = \"middle\"\n");
    let error =
        try_parse_with_settings_file::<IngestArgs, _, _>(["seismo-ingest", "--config-file", choice.to_str().unwrap()])
            .unwrap_err();
    assert!(error.to_string().contains("one of earliest, latest"), "{error}");
}

#[test]
fn missing_file_is_reported() {
    let _env = ScopedEnv::new(&[]);

    let error = try_parse_with_settings_file::<IngestArgs, _, _>([
        "seismo-ingest",
        "--config-file",
        "/nonexistent/seismo-settings.toml",
    ])
    .unwrap_err();

    assert!(matches!(error, SettingsError::Read { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/seismo-settings.toml"),
        "{error}"
    );
}

#[test]
fn detector_serve_reads_settings_file() {
    let path = settings_file(
        "detector",
        r#"
        SEISMO_DETECTOR_LISTEN = "127.0.0.1:50999"
        SEISMO_DETECTOR_COMMIT_INTERVAL = "10s"
        SEISMO_DETECTOR_GROUP_ID = "group-from-file"
        SEISMO_LOG_FORMAT = "json"
        "#,
    );
    let _env = ScopedEnv::new(&[("SEISMO_DETECTOR_GROUP_ID", "group-from-env")]);

    let cli: Cli =
        try_parse_with_settings_file(["seismo-detector", "serve", "--config-file", path.to_str().unwrap()]).unwrap();

    assert_eq!(cli.log_format, LogFormat::Json, "a global option is set from the file");
    let Command::Serve(args) = cli.command else {
        panic!("serve parsed as another command");
    };
    assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 50999)));
    assert_eq!(args.commit_interval, Duration::from_secs(10));
    assert_eq!(args.group_id, "group-from-env");
}

#[test]
fn detector_invalid_duration_is_rejected() {
    let path = settings_file("detector_duration", "SEISMO_DETECTOR_COMMIT_INTERVAL = \"often\"\n");
    let _env = ScopedEnv::new(&[]);

    let error = try_parse_with_settings_file::<Cli, _, _>([
        "seismo-detector",
        "serve",
        "--config-file",
        path.to_str().unwrap(),
    ])
    .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("`SEISMO_DETECTOR_COMMIT_INTERVAL`"), "{message}");
    assert!(message.contains("\"often\""), "{message}");
}

#[test]
fn notifier_reads_settings_file() {
    let path = settings_file(
        "notifier",
        r#"
        SEISMO_DETECTORS = ["http://127.0.0.1:50051", "http://127.0.0.1:50052"]
        SEISMO_NOTIFIER_SEND_ATTEMPTS = 3
        SEISMO_NOTIFIER_CONSOLE = true
        SEISMO_NOTIFIER_SHUTDOWN_GRACE_S = 20
        "#,
    );
    let _env = ScopedEnv::new(&[]);

    let args: NotifierArgs = try_parse_with_settings_file([
        "seismo-notifier",
        "--config-file",
        path.to_str().unwrap(),
        "--shutdown-grace-s",
        "5",
    ])
    .unwrap();

    assert_eq!(args.detectors, ["http://127.0.0.1:50051", "http://127.0.0.1:50052"]);
    assert_eq!(args.send_attempts, 3);
    assert!(args.console);
    assert_eq!(args.shutdown_grace_s, 5, "the command line wins over the file");
}

#[test]
fn notifier_out_of_range_value_is_rejected() {
    let path = settings_file("notifier_range", "SEISMO_NOTIFIER_SEND_ATTEMPTS = 0\n");
    let _env = ScopedEnv::new(&[]);

    let error = try_parse_with_settings_file::<NotifierArgs, _, _>([
        "seismo-notifier",
        "--config-file",
        path.to_str().unwrap(),
    ])
    .unwrap_err();

    let message = error.to_string();
    assert!(message.contains("`SEISMO_NOTIFIER_SEND_ATTEMPTS`"), "{message}");
    assert!(message.contains("Telegram requests per alert"), "{message}");
}
