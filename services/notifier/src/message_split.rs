//! Splits an [`AlertMessage`] into parts that fit Telegram's length limits.
//!
//! Telegram counts the length of a message after parsing its entities, that
//! is the visible text without tags, in UTF-16 code units (Bot API,
//! sendMessage `text` and sendPhoto `caption`). The split works on the styled
//! spans, and each part renders its own tags, so every part is valid HTML.

use crate::message::{AlertMessage, Span};

/// Maximum visible length of a message text, in UTF-16 code units.
pub const MAX_MESSAGE_UTF16: usize = 4096;
/// Maximum visible length of a media caption, in UTF-16 code units.
pub const MAX_CAPTION_UTF16: usize = 1024;

impl AlertMessage {
    /// Returns the length Telegram checks against its limits: the visible
    /// text in UTF-16 code units.
    pub fn visible_utf16_len(&self) -> usize {
        self.spans.iter().map(|span| utf16_len(span_text(span))).sum()
    }

    /// Splits the message into parts of at most `max_utf16` visible UTF-16
    /// code units, in order. Parts end at line ends where possible. A line
    /// longer than `max_utf16` is cut between characters, never inside one,
    /// so a character longer than `max_utf16` (an emoji needs 2) gets a part
    /// of its own. Parts of only whitespace are left out, because Telegram
    /// rejects an empty message. The parts' visible texts joined are the
    /// message's visible text, apart from those whitespace-only parts.
    pub fn split(&self, max_utf16: usize) -> Vec<AlertMessage> {
        if self.visible_utf16_len() <= max_utf16 {
            return vec![self.clone()];
        }

        let mut parts = Vec::new();
        let mut current = PartBuilder::default();

        for line in self.lines() {
            let line_len: usize = line.iter().map(|span| utf16_len(span_text(span))).sum();
            if current.len + line_len > max_utf16 {
                current.finish_into(&mut parts);
            }
            if line_len <= max_utf16 {
                current.extend(line);
                continue;
            }

            for span in line {
                for character in span_text(&span).chars() {
                    if current.len + character.len_utf16() > max_utf16 {
                        current.finish_into(&mut parts);
                    }
                    current.push_char(&span, character);
                }
            }
        }
        current.finish_into(&mut parts);

        parts
            .into_iter()
            .filter(|part| !part.plain_text().trim().is_empty())
            .collect()
    }

    /// Returns the spans line by line. Every line keeps its `\n` at the end,
    /// inside the span that contains it; only the last line may lack one.
    fn lines(&self) -> Vec<Vec<Span>> {
        let mut lines = Vec::new();
        let mut line = Vec::new();
        for span in &self.spans {
            for piece in span_text(span).split_inclusive('\n') {
                line.push(with_text(span, piece.to_string()));
                if piece.ends_with('\n') {
                    lines.push(std::mem::take(&mut line));
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

/// The part being filled, with its visible length.
#[derive(Default)]
struct PartBuilder {
    message: AlertMessage,
    len: usize,
}

impl PartBuilder {
    fn extend(&mut self, spans: Vec<Span>) {
        for span in spans {
            self.len += utf16_len(span_text(&span));
            self.message.spans.push(span);
        }
    }

    /// Appends `character` with the style of `style`, to the last span when
    /// that has the same style.
    fn push_char(&mut self, style: &Span, character: char) {
        self.len += character.len_utf16();
        if let Some(last) = self.message.spans.last_mut()
            && std::mem::discriminant(last) == std::mem::discriminant(style)
        {
            span_text_mut(last).push(character);
            return;
        }
        self.message.spans.push(with_text(style, character.to_string()));
    }

    fn finish_into(&mut self, parts: &mut Vec<AlertMessage>) {
        let finished = std::mem::take(self);
        if !finished.message.spans.is_empty() {
            parts.push(finished.message);
        }
    }
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

fn span_text(span: &Span) -> &str {
    let (Span::Plain(text) | Span::Bold(text) | Span::Code(text)) = span;
    text
}

fn span_text_mut(span: &mut Span) -> &mut String {
    let (Span::Plain(text) | Span::Bold(text) | Span::Code(text)) = span;
    text
}

/// Returns a span with the style of `style` and `text`.
fn with_text(style: &Span, text: String) -> Span {
    match style {
        Span::Plain(_) => Span::Plain(text),
        Span::Bold(_) => Span::Bold(text),
        Span::Code(_) => Span::Code(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible_lengths(parts: &[AlertMessage]) -> Vec<usize> {
        parts.iter().map(AlertMessage::visible_utf16_len).collect()
    }

    fn joined_plain_text(parts: &[AlertMessage]) -> String {
        parts.iter().map(AlertMessage::plain_text).collect()
    }

    #[test]
    fn short_message_stays_whole() {
        let mut message = AlertMessage::default();
        message.bold("signups").plain(" dropped\nSlice: ").code("country=DE");

        let parts = message.split(MAX_MESSAGE_UTF16);

        assert_eq!(parts, [message]);
    }

    #[test]
    fn length_counts_utf16_units_of_visible_text() {
        let mut message = AlertMessage::default();
        message.bold("A&B").plain(" 🔴 ").code("<x>");

        // "A&B 🔴 <x>": 9 characters, the emoji is a surrogate pair.
        assert_eq!(message.visible_utf16_len(), 10);
    }

    #[test]
    fn split_prefers_line_ends() {
        let mut message = AlertMessage::default();
        message
            .bold("first line")
            .plain("\n")
            .plain("second line\n")
            .code("third");

        let parts = message.split(15);

        let texts: Vec<String> = parts.iter().map(AlertMessage::plain_text).collect();
        assert_eq!(texts, ["first line\n", "second line\n", "third"]);
    }

    #[test]
    fn split_packs_several_lines_per_part() {
        let mut message = AlertMessage::default();
        for index in 0..10 {
            message.plain(format!("line {index}\n"));
        }

        let parts = message.split(21);

        // Each line has 7 units, so three fit in a part.
        assert_eq!(visible_lengths(&parts), [21, 21, 21, 7]);
        assert_eq!(joined_plain_text(&parts), message.plain_text());
    }

    #[test]
    fn long_line_is_cut_between_characters() {
        let mut message = AlertMessage::default();
        message.plain("ab").bold("🔴🔴🔴").code("cd");

        let parts = message.split(3);

        for part in &parts {
            assert!(part.visible_utf16_len() <= 3, "{part:?}");
        }
        assert_eq!(joined_plain_text(&parts), "ab🔴🔴🔴cd");
        assert_eq!(parts[1].html(), "<b>🔴</b>");
    }

    #[test]
    fn parts_render_balanced_tags() {
        let mut message = AlertMessage::default();
        message.bold("x".repeat(10)).plain("\n").code("<&>".repeat(10));

        let parts = message.split(8);

        let html: Vec<String> = parts.iter().map(AlertMessage::html).collect();
        assert_eq!(html[0], "<b>xxxxxxxx</b>");
        assert_eq!(html[1], "<b>xx</b>\n");
        assert_eq!(html[2], "<code>&lt;&amp;&gt;&lt;&amp;&gt;&lt;&amp;</code>");
        for part in &html {
            assert_eq!(part.matches("<b>").count(), part.matches("</b>").count());
            assert_eq!(part.matches("<code>").count(), part.matches("</code>").count());
        }
        assert_eq!(joined_plain_text(&parts), message.plain_text());
    }

    #[test]
    fn oversized_character_gets_own_part() {
        let mut message = AlertMessage::default();
        message.plain("a🔴b");

        let parts = message.split(1);

        let texts: Vec<String> = parts.iter().map(AlertMessage::plain_text).collect();
        assert_eq!(texts, ["a", "🔴", "b"]);
    }

    #[test]
    fn whitespace_only_parts_are_left_out() {
        let mut message = AlertMessage::default();
        message.plain("abcd\n").plain(" ".repeat(8)).plain("\nefgh");

        let parts = message.split(5);

        let texts: Vec<String> = parts.iter().map(AlertMessage::plain_text).collect();
        assert_eq!(texts, ["abcd\n", "efgh"]);
    }

    #[test]
    fn caption_limit_splits_long_text() {
        let mut message = AlertMessage::default();
        message.plain("é".repeat(3000));

        let parts = message.split(MAX_CAPTION_UTF16);

        assert_eq!(visible_lengths(&parts), [1024, 1024, 952]);
    }
}
