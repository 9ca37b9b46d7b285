//! Label windows of series files, in NAB's `combined_windows.json` format
//! (`{"<group>/<file>.csv": [["<start>", "<end>"], ...]}`) or the demo's
//! single-file format (`{"file": "<file>.csv", "windows": [...]}`). Window
//! bounds are inclusive UTC times.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

use super::series_file::parse_timestamp_ms;

/// Inclusive time range in Unix epoch ms.
pub(crate) type LabelWindow = (i64, i64);

#[derive(Debug, Clone)]
pub(crate) struct LabelSet {
    path: PathBuf,
    /// Windows by file key, e.g. `realKnownCause/nyc_taxi.csv`.
    files: BTreeMap<String, Vec<LabelWindow>>,
}

impl LabelSet {
    /// Reads and checks a labels file. Errors name the entry that failed.
    pub fn load(path: &Path) -> anyhow::Result<LabelSet> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read labels file {}; check the --labels path", path.display()))?;
        let json: Value =
            serde_json::from_str(&text).with_context(|| format!("labels file {} is not valid JSON", path.display()))?;
        let files = parse_labels(&json).with_context(|| format!("invalid labels file {}", path.display()))?;
        Ok(LabelSet {
            path: path.to_path_buf(),
            files,
        })
    }

    /// Returns the windows of the series file `key` (its path relative to
    /// the replayed directory, `/`-separated): the entry named `key`, else
    /// the one entry with the same file name, else `None`.
    pub fn windows_for(&self, key: &str) -> anyhow::Result<Option<&[LabelWindow]>> {
        if let Some(windows) = self.files.get(key) {
            return Ok(Some(windows));
        }

        let file_name = file_name_of(key);
        let matches: Vec<&String> = self
            .files
            .keys()
            .filter(|entry| file_name_of(entry) == file_name)
            .collect();
        match matches.as_slice() {
            [] => Ok(None),
            [entry] => Ok(self.files.get(*entry).map(Vec::as_slice)),
            several => bail!(
                "labels file {} has several entries for {file_name}: {}; replay their directory so the \
                 group/file key decides",
                self.path.display(),
                several
                    .iter()
                    .map(|entry| entry.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn file_name_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn parse_labels(json: &Value) -> anyhow::Result<BTreeMap<String, Vec<LabelWindow>>> {
    let Some(object) = json.as_object() else {
        bail!("expected a JSON object of file → windows");
    };

    // The demo format names one file.
    if let (Some(Value::String(file)), Some(windows)) = (object.get("file"), object.get("windows")) {
        let windows = parse_windows(windows).with_context(|| format!("entry \"{file}\""))?;
        return Ok(BTreeMap::from([(file.clone(), windows)]));
    }

    object
        .iter()
        .map(|(key, windows)| {
            let windows = parse_windows(windows).with_context(|| format!("entry \"{key}\""))?;
            Ok((key.clone(), windows))
        })
        .collect()
}

fn parse_windows(json: &Value) -> anyhow::Result<Vec<LabelWindow>> {
    let Some(windows) = json.as_array() else {
        bail!("expected a list of [start, end] windows");
    };

    windows
        .iter()
        .enumerate()
        .map(|(index, window)| parse_window(window).with_context(|| format!("window {index}")))
        .collect()
}

fn parse_window(json: &Value) -> anyhow::Result<LabelWindow> {
    let bounds: Vec<&str> = json
        .as_array()
        .map_or_else(Vec::new, |bounds| bounds.iter().filter_map(Value::as_str).collect());
    let [start, end] = bounds.as_slice() else {
        bail!("expected [\"<start>\", \"<end>\"] as two timestamp strings, found {json}");
    };

    let parse = |text: &str| {
        parse_timestamp_ms(text)
            .with_context(|| format!("invalid timestamp \"{text}\"; write YYYY-MM-DD HH:MM:SS[.ffffff] in UTC"))
    };
    let (start_ms, end_ms) = (parse(start)?, parse(end)?);
    if start_ms > end_ms {
        bail!("window starts at {start} after its end {end}; swap the bounds");
    }
    Ok((start_ms, end_ms))
}

/// True when `time_ms` lies inside one of `windows`, bounds included.
pub(crate) fn is_labelled(time_ms: i64, windows: &[LabelWindow]) -> bool {
    windows.iter().any(|&(start, end)| (start..=end).contains(&time_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_set(json: &str) -> LabelSet {
        LabelSet {
            path: PathBuf::from("labels.json"),
            files: parse_labels(&serde_json::from_str(json).unwrap()).unwrap(),
        }
    }

    #[test]
    fn nab_format() {
        let labels =
            label_set(r#"{"a/x.csv": [["1970-01-01 00:00:01.000000", "1970-01-01 00:00:02.000000"]], "b/y.csv": []}"#);
        assert_eq!(labels.windows_for("a/x.csv").unwrap(), Some(&[(1_000, 2_000)][..]));
        assert_eq!(labels.windows_for("b/y.csv").unwrap(), Some(&[][..]));
        assert_eq!(labels.windows_for("c/z.csv").unwrap(), None);
    }

    #[test]
    fn lookup_by_file_name() {
        let labels = label_set(r#"{"a/x.csv": [["1970-01-01 00:00:01", "1970-01-01 00:00:02"]]}"#);
        assert_eq!(labels.windows_for("x.csv").unwrap(), Some(&[(1_000, 2_000)][..]));
        assert_eq!(labels.windows_for("other/x.csv").unwrap(), Some(&[(1_000, 2_000)][..]));
    }

    #[test]
    fn ambiguous_file_name() {
        let labels = label_set(r#"{"a/x.csv": [], "b/x.csv": []}"#);
        let error = labels.windows_for("x.csv").unwrap_err().to_string();
        assert!(error.contains("a/x.csv, b/x.csv"), "{error}");
    }

    #[test]
    fn demo_format() {
        let labels = label_set(r#"{"file": "x.csv", "windows": [["1970-01-01 00:00:01", "1970-01-01 00:00:03"]]}"#);
        assert_eq!(labels.windows_for("x.csv").unwrap(), Some(&[(1_000, 3_000)][..]));
    }

    #[test]
    fn invalid_entries_named() {
        let cases = [
            (r#"[1, 2]"#, "expected a JSON object"),
            (r#"{"x.csv": 5}"#, "entry \"x.csv\""),
            (r#"{"x.csv": [["1970-01-01 00:00:01"]]}"#, "window 0"),
            (
                r#"{"x.csv": [["1970-01-01 00:00:01", "soon"]]}"#,
                "invalid timestamp \"soon\"",
            ),
            (
                r#"{"x.csv": [["1970-01-01 00:00:09", "1970-01-01 00:00:01"]]}"#,
                "after its end",
            ),
        ];
        for (json, expected) in cases {
            let error = parse_labels(&serde_json::from_str(json).unwrap()).unwrap_err();
            let message = format!("{error:#}");
            assert!(message.contains(expected), "{json}: {message}");
        }
    }

    #[test]
    fn labelled_bounds_inclusive() {
        let windows = [(10, 20)];
        assert!(!is_labelled(9, &windows));
        assert!(is_labelled(10, &windows));
        assert!(is_labelled(20, &windows));
        assert!(!is_labelled(21, &windows));
    }
}
