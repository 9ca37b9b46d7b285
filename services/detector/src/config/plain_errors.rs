//! Rewording of deserialisation errors: serde names Rust types ("expected
//! usize"), which a person editing a TOML file should not need to know.

/// Returns `message` with Rust type names replaced by the kind of TOML
/// value they take.
pub fn plain_error(message: &str) -> String {
    let mut text = message.trim().to_string();
    // A negative number needs the type's range; any other wrong value gets
    // the key's own range when its value is checked.
    let whole_number = if text.starts_with("invalid value: integer `-") {
        "expected a whole number, 0 or more"
    } else {
        "expected a whole number"
    };
    for (rust, plain) in [
        ("expected usize", whole_number),
        ("expected u64", whole_number),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        (
            "invalid type: unit variant, expected string only",
            "invalid value: expected one of the names this key takes, as a quoted string",
        ),
    ] {
        text = text.replace(rust, plain);
    }

    // "expected struct NoveltyParams" names a settings table.
    while let Some(start) = text.find("expected struct ") {
        let name_start = start + "expected struct ".len();
        let name_end = text[name_start..]
            .find(|character: char| !character.is_alphanumeric())
            .map_or(text.len(), |offset| name_start + offset);
        text.replace_range(start..name_end, "expected a table");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_toml_kinds() {
        assert_eq!(
            plain_error("invalid value: integer `-3`, expected usize\nin `novelty.shape_windows`"),
            "invalid value: integer `-3`, expected a whole number, 0 or more\nin `novelty.shape_windows`"
        );
        assert_eq!(
            plain_error("invalid type: integer `5`, expected struct NoveltyParams\nin `novelty`"),
            "invalid type: integer `5`, expected a table\nin `novelty`"
        );
        assert_eq!(
            plain_error("invalid type: unit variant, expected string only\nin `cooldown_from`"),
            "invalid value: expected one of the names this key takes, as a quoted string\nin `cooldown_from`"
        );
        assert_eq!(
            plain_error("invalid type: string \"three\", expected usize\nin `reference_windows`"),
            "invalid type: string \"three\", expected a whole number\nin `reference_windows`"
        );
        assert_eq!(plain_error("band_sigmas = 0 is invalid"), "band_sigmas = 0 is invalid");
    }
}
