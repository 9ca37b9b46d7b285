//! HTML escaping for Telegram's `HTML` parse mode.

use std::borrow::Cow;

/// Escapes `&`, `<`, `>` and `"` so that `text` shows verbatim in a Telegram
/// HTML message, both between tags and inside a quoted attribute value.
///
/// Telegram decodes exactly the named entities `&lt;`, `&gt;`, `&amp;` and
/// `&quot;` (Bot API, "HTML style"), so only those are produced. Markdown
/// characters such as `*`, `_` and `[` carry no meaning in HTML mode and stay
/// as they are.
pub fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"']) {
        return Cow::Borrowed(text);
    }

    let mut escaped = String::with_capacity(text.len() + 16);
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_replaces_markup_characters() {
        assert_eq!(escape_html("A&B <control>"), "A&amp;B &lt;control&gt;");
        assert_eq!(escape_html(r#"say "hi""#), "say &quot;hi&quot;");
    }

    #[test]
    fn escape_keeps_markdown_characters() {
        for value in ["drop_rate*", "a_b", "[x]", "`tick`", "~x~", "100%"] {
            assert_eq!(escape_html(value), value);
        }
    }

    #[test]
    fn escape_does_not_double_escape_entities() {
        assert_eq!(escape_html("&amp;"), "&amp;amp;");
    }

    #[test]
    fn escape_keeps_non_ascii_text() {
        assert_eq!(escape_html("Zürich <Ω>"), "Zürich &lt;Ω&gt;");
    }

    #[test]
    fn escape_borrows_clean_text() {
        assert!(matches!(escape_html("checkout_rate"), Cow::Borrowed(_)));
    }
}
